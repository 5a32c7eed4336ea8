"""docs/benchmarks.md from the results of bench/run.py: the figures, the targets met or not, and the notes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

DBS = ("sqlite", "postgres")
NOTES = Path(__file__).with_name("notes.md")


def _get(result: dict[str, Any], *path: str) -> Any:
    for name in path:
        if not isinstance(result, dict) or name not in result:
            return None
        result = result[name]
    return result


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        value = f"{value:,.1f}" if value >= 10 else f"{value:.2f}"
    elif isinstance(value, int):
        value = f"{value:,}"
    return f"{value}{unit}"


def _verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("**met**" if ok else "not met")


def _worst(results: dict[str, Any], name: str) -> float | None:
    found = [v["p95_ms"] for k, v in (results.get(name) or {}).items() if isinstance(v, dict) and "p95_ms" in v]
    return max(found) if found else None


def _ratio(value: Any, target: float, *, at_least: bool = True) -> bool | None:
    if value is None:
        return None
    return bool(value >= target) if at_least else bool(value <= target)


def _vs(mine: Any, peer: Any, ratio: Any, unit: str, peer_name: str, ratio_unit: str = "x") -> str:
    """'Tandem 155 vs sekmet 1,435 entries/s → 0.11x': a figure, its peer and their ratio, from one run."""
    if mine is None:
        return "—"
    return f"{_fmt(mine)} vs {peer_name} {_fmt(peer)}{unit} → **{_fmt(ratio, ratio_unit)}**"


def _share_of_bare(benchmark: str, load: dict[str, Any], mine: str) -> tuple[str, str, str, bool | None]:
    """A create's rate as a share of the bare validate-only endpoint's, from the same run (target 40 %)."""
    share = load.get("ratio_to_bare")
    percent = None if share is None else share * 100
    measured = _vs(_get(load, mine, "rps"), _get(load, "bare", "rps"), percent, " req/s", "bare", " %")
    return (benchmark, "≥ 40 %", measured, _ratio(share, 0.4))


def target_rows(db: dict[str, Any], bundle_sizes: list[int]) -> list[tuple[str, str, str, bool | None]]:
    """(benchmark, target, measured, met) for one database; the same rows for every database."""
    rows: list[tuple[str, str, str, bool | None]] = []
    b = db.get("bundle") or {}
    for size in bundle_sizes:
        one = _get(b, "by_size", str(size)) or {}
        eps, peer, vs_peer = (
            _get(one, "entries_per_s"),
            _get(one, "sekmet", "entries_per_s"),
            one.get("ratio_to_sekmet"),
        )
        rows.append(
            (
                f"Bundle ingest, {size:,} entries: Tandem / sekmet-fhir (entries/s)",
                "≥ 1.0x",
                _vs(eps, peer, vs_peer, " entries/s", "sekmet"),
                _ratio(vs_peer, 1.0),
            )
        )
        floor, ratio = one.get("floor_entries_per_s"), one.get("ratio_to_floor")
        rows.append(
            (
                f"Bundle ingest, {size:,} entries: multiple of the fhir.resources parse floor",
                "≤ 2.0x",
                "—" if ratio is None else f"{_fmt(eps)} vs floor {_fmt(floor)} entries/s → **{_fmt(ratio, 'x')}**",
                _ratio(ratio, 2.0, at_least=False),
            )
        )
    if bundle_sizes:
        largest = _get(b, "by_size", str(max(bundle_sizes)), "entries_per_s")
        rows.append(
            (
                f"Bundle ingest, {max(bundle_sizes):,} entries: entries/s (earlier target)",
                "≥ 700",
                _fmt(largest),
                _ratio(largest, 700),
            )
        )
    c = db.get("create") or {}
    p = c.get("patient") or {}
    rows.append(
        (
            "FHIR Patient create, 16 clients: Tandem / sekmet-fhir (req/s)",
            "≥ 1.0x",
            _vs(_get(p, "tandem", "rps"), _get(p, "sekmet", "rps"), p.get("ratio_to_sekmet"), " req/s", "sekmet"),
            _ratio(p.get("ratio_to_sekmet"), 1.0),
        )
    )
    several, ratio = _get(p, "tandem_workers", "rps"), p.get("workers_ratio_to_sekmet")
    rows.append(
        (
            f"FHIR Patient create, {p.get('workers', 2)} API processes (PostgreSQL only): Tandem / sekmet-fhir",
            "≥ 1.0x",
            _vs(several, _get(p, "sekmet", "rps"), ratio, " req/s", "sekmet")
            if several is not None
            else "one process: SQLite keeps one writer",
            _ratio(ratio, 1.0),
        )
    )
    p95, peer95 = _get(p, "tandem", "p95_ms"), _get(p, "sekmet", "p95_ms")
    rows.append(
        (
            "FHIR Patient create: p95",
            "< 50 ms",
            "—" if p95 is None else f"{_fmt(p95, ' ms')} (sekmet {_fmt(peer95, ' ms')})",
            None if p95 is None else p95 < 50,
        )
    )
    for name, label in (("patient", "FHIR Patient"), ("questionnaire_response", "FHIR QuestionnaireResponse (PHQ-9)")):
        one = c.get(name) or {}
        rows.append(_share_of_bare(f"{label} create: share of a bare validate-only endpoint's rate", one, "tandem"))
    q95 = _get(c, "questionnaire_response", "tandem", "p95_ms")
    rows.append(
        (
            "FHIR QuestionnaireResponse (PHQ-9) create: p95",
            "< 50 ms",
            _fmt(q95, " ms"),
            None if q95 is None else q95 < 50,
        )
    )
    k = c.get("ketamine") or {}
    k95 = _get(k, "real", "p95_ms")
    rows.append(_share_of_bare("Ketamine administration create (JSON API): share of bare rate", k, "real"))
    rows.append(("Ketamine administration create: p95", "< 50 ms", _fmt(k95, " ms"), None if k95 is None else k95 < 50))
    s = _worst(db, "search")
    rows.append(("FHIR search: worst p95 of the queries", "< 30 ms", _fmt(s, " ms"), None if s is None else s < 30))
    cl = _worst(db, "caseload")
    rows.append(
        ("Caseload page: worst p95 of the queries", "< 100 ms", _fmt(cl, " ms"), None if cl is None else cl < 100)
    )
    r = _get(db, "recompute", "batched_patients_per_s")
    rows.append(("Recompute: patients/s", "≥ 1,000", _fmt(r), None if r is None else r >= 1000))
    sp = _get(db, "push", "speedup")
    rows.append(("Push: batch vs one-by-one", "≥ 5x", _fmt(sp, "x"), None if sp is None else sp >= 5))
    m = _get(b, "rss_peak_mb")
    rows.append(("Peak RSS of the API during ingest", "≤ 300 MB", _fmt(m, " MB"), None if m is None else m <= 300))
    return rows


def _load_text(figures: dict[str, Any]) -> str:
    rate, p50, p95 = figures["rps"], figures["p50_ms"], figures["p95_ms"]
    return f"{rate} req/s, p50 {p50} ms, p95 {p95} ms ({figures['requests']} requests)"


def _pct(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f} %"


def _create_lines(c: dict[str, Any]) -> list[str]:
    if "patient" not in c:
        return [f"- Single creates: {c.get('error', 'not run')}"]
    p, q, k = c["patient"], c["questionnaire_response"], c["ketamine"]
    return [
        f"- **Single creates**, {c['clients']} concurrent clients each (Tandem and sekmet-fhir in the same run, one "
        "after the other, the same bodies in the same order):",
        f"  - **FHIR Patient** `POST /fhir/Patient`: Tandem {_load_text(p['tandem'])}; sekmet-fhir `POST /Patient` "
        f"{_load_text(p['sekmet'])} → **{_fmt(p['ratio_to_sekmet'], 'x')}** sekmet's rate; bare validate-only "
        f"endpoint {_load_text(p['bare'])} → **{_pct(p['ratio_to_bare'])}** of bare.",
        f"  - **FHIR QuestionnaireResponse** (PHQ-9, scored) `POST /fhir/QuestionnaireResponse`: Tandem "
        f"{_load_text(q['tandem'])}; bare validate-only endpoint {_load_text(q['bare'])} → "
        f"**{_pct(q['ratio_to_bare'])}** of bare.",
        f"  - **Ketamine administration** (JSON API) `POST /api/v1/ketamine-administrations`: {_load_text(k['real'])}; "
        f"bare endpoint {_load_text(k['bare'])} → **{_pct(k['ratio_to_bare'])}** of bare.",
    ]


def _bundle_lines(b: dict[str, Any]) -> list[str]:
    if "by_size" not in b:
        return [f"- Bundle ingest: {b.get('error', 'not run')}"]
    lines = []
    for size, one in b["by_size"].items():
        peer = one["sekmet"]
        lines.append(
            f"- **Bundle ingest**, {int(size):,} entries ({one['by_type']}, {one['body_kb']} kB), one transaction: "
            f"Tandem {one['seconds']} s = **{one['entries_per_s']} entries/s**; sekmet-fhir, the same Bundle, "
            f"{peer['seconds']} s = {peer['entries_per_s']} entries/s → **{_fmt(one['ratio_to_sekmet'], 'x')}** "
            f"sekmet; parse+validate floor with fhir.resources {one['floor_seconds']} s "
            f"({one['floor_entries_per_s']} entries/s) → **{one['ratio_to_floor']}x** the floor."
        )
    lines.append(
        f"- Tandem's API process RSS during the ingests: {b['rss_before_mb']} MB before, peak {b['rss_peak_mb']} MB "
        f"(high-water mark {b['rss_hwm_mb']} MB)."
    )
    return lines


def write_report(results: dict[str, Any], path: Path) -> None:
    dbs = {k: v for k, v in results["databases"].items()}
    m = results["machine"]
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`.venv/bin/python -m bench.run`); do not edit by hand — the notes below the",
        "figures live in `bench/notes.md`. Raw figures: `var/bench/results.json`.",
        "",
        f"- **Date**: {results['date']} (whole run {results['seconds']:.0f} s)",
        f"- **Machine**: {m['cores']} cores, {m['memory']}, {m['cpu']}; {m['platform']}",
        "- **Versions**: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        "- **Load average** (1/5/15 min) at start "
        + " / ".join(f"{x:.1f}" for x in results["load_average_at_start"])
        + ", at end "
        + " / ".join(f"{x:.1f}" for x in results["load_average_at_end"])
        + " — other work on the machine (e.g. a test suite) inflates every figure",
        "- **Data**: the seeded demo generator (`generate_demo_tenant(seed=7, anchor=2026-11-01)`)",
        "",
        "## Targets",
        "",
        "| benchmark | target (2 cores) | " + " | ".join(f"{k} | {k}: met?" for k in dbs) + " |",
        "|---|---|" + "---|---|" * len(dbs),
    ]
    bundle_sizes = [int(n) for n in results["sizes"].get("bundle_sizes", ())]
    per_db = {k: target_rows(v, bundle_sizes) for k, v in dbs.items()}
    first = next(iter(per_db.values()), [])
    for i, (name, target, _, _) in enumerate(first):
        cells = " | ".join(f"{per_db[k][i][2]} | {_verdict(per_db[k][i][3])}" for k in dbs)
        lines.append(f"| {name} | {target} | {cells} |")
    lines += [
        "",
        "sekmet-fhir (a third party's FHIR R4 server on its own SQLite file, `sekmet-fhir` "
        f"{m['versions'].get('sekmet-fhir', '?')}) runs beside Tandem in the same run for each database; its figures "
        "and every ratio above come from that one run.",
    ]
    lines += ["", "## Figures", ""]
    for kind, db in dbs.items():
        lines += [f"### {kind}", ""]
        lines += _bundle_lines(db.get("bundle") or {})
        lines += _create_lines(db.get("create") or {})
        load = db.get("load")
        if load:
            lines.append(
                f"- **Bulk load** (SQL, reads-only benchmarks): {load['patients']:,} patients, {load['records']:,} "
                f"records, {load['observations']:,} Observations projected, in {load['seconds']} s."
            )
        r = db.get("recompute") or {}
        if "batched_patients_per_s" in r:
            lines.append(
                f"- **Recompute** of {r['patients']:,} patients from the database: {r['batched_seconds']} s = "
                f"**{r['batched_patients_per_s']} patients/s** batched (`recompute_patients`); the per-patient path "
                f"(`recompute_patient`, one transaction each) on {r['one_by_one_sample']} of them: "
                f"{r['one_by_one_patients_per_s']} patients/s."
            )
        elif r:
            lines.append(f"- Recompute: {r.get('error')}")
        for name, title in (("caseload", "Caseload page (50 rows)"), ("search", "FHIR search (_count=50)")):
            found = db.get(name) or {}
            if "error" in found:
                lines.append(f"- {title}: {found['error']}")
                continue
            if not found:
                continue
            extra = f" over {found['observations']:,} Observations" if "observations" in found else ""
            lines.append(f"- **{title}**{extra}, {results['sizes']['repeats']} requests each, sequential:")
            for query, v in found.items():
                if isinstance(v, dict) and "p95_ms" in v:
                    lines.append(
                        f"  - {query} (`{v['url']}`, "
                        + (f"total {v['total']}" if v.get("total") is not None else "total not counted")
                        + f", {v.get('returned')} returned): p50 {v['p50_ms']} ms, "
                        f"**p95 {v['p95_ms']} ms**"
                    )
            deep = found.get("deep_page")
            if deep:
                lines.append(
                    f"  - the page at position {deep['position']:,} of `category=vital-signs` (default sort), not "
                    f"a target: by `_offset` p50 {deep['offset']['p50_ms']} ms, p95 {deep['offset']['p95_ms']} ms; "
                    f"by the next link's `_cursor` p50 {deep['cursor']['p50_ms']} ms, "
                    f"**p95 {deep['cursor']['p95_ms']} ms**"
                )
        p = db.get("push") or {}
        if "batch" in p:
            one, batch = p["one_by_one"], p["batch"]
            lines.append(
                f"- **Push** of {p['queued']} records to sekmet-fhir: one by one {one['records_per_s']} records/s "
                f"({one['requests']} requests, {one['seconds']} s, {one['statuses']}); batch Bundles "
                f"{batch['records_per_s']} records/s ({batch['requests']} requests, {batch['seconds']} s, "
                f"{batch['statuses']}) → **{p['speedup']}x**."
            )
        elif p:
            lines.append(f"- Push: {p.get('error')}")
        lines.append(f"- Time per benchmark (s, incl. setup): {db.get('_seconds')}")
        lines.append("")
    lines.append(NOTES.read_text())
    path.write_text("\n".join(lines) + "\n")
