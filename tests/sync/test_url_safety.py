"""EHR target URLs can never point us at ourselves, the cloud metadata service or the LAN (SSRF)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.errors import InvalidRequest
from service.sync.url_safety import check_target_url, embedded_ipv4
from tests.examples_budget import examples

REFUSED = {
    "loopback name": "https://localhost/fhir",
    "loopback address": "https://127.0.0.1/fhir",
    "loopback IPv6": "https://[::1]/fhir",
    "IPv4-mapped loopback": "https://[::ffff:127.0.0.1]/fhir",
    "decimal IP": "https://2130706433/fhir",
    "hex IP": "https://0x7f000001/fhir",
    "short IP": "https://127.1/fhir",
    "cloud metadata": "https://169.254.169.254/latest/meta-data",
    "private 10/8": "https://10.1.2.3/fhir",
    "private 172.16/12": "https://172.20.0.5/fhir",
    "private 192.168/16": "https://192.168.1.10/fhir",
    "carrier-grade NAT": "https://100.64.0.1/fhir",
    "unspecified": "https://0.0.0.0/fhir",
    "plain http": "http://93.184.216.34/fhir",
    "credentials in URL": "https://user:secret@93.184.216.34/fhir",
    "not http": "file:///etc/passwd",
    "query string": "https://93.184.216.34/fhir?next=http://127.0.0.1",
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused(case: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        check_target_url(REFUSED[case])
    assert refused.value.problems[0].field == "base_url"
    assert refused.value.message


def test_a_public_address_is_accepted_and_normalised() -> None:
    assert check_target_url("https://93.184.216.34/api/FHIR/R4/") == "https://93.184.216.34/api/FHIR/R4"


def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="non-public"):
        check_target_url("https://fhir.hospital.example/R4", resolve=lambda host: ["10.20.30.40"])


def test_one_private_answer_among_public_ones_is_enough_to_refuse() -> None:
    with pytest.raises(InvalidRequest, match="non-public"):
        check_target_url("https://fhir.hospital.example/R4", resolve=lambda host: ["93.184.216.34", "127.0.0.1"])


def test_an_unresolvable_host_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="does not resolve"):
        check_target_url("https://fhir.hospital.example/R4", resolve=lambda host: [])


def test_the_operator_can_allow_a_hospital_network_host() -> None:
    allowed = check_target_url("http://127.0.0.1:8080/fhir", allowed_hosts=["127.0.0.1"], require_https=False)
    assert allowed == "http://127.0.0.1:8080/fhir"


# IPv6 transition forms (issue #16, finding 11): a relay or translator would deliver the request to the IPv4
# address inside, so that address must be public too.
NON_PUBLIC_V4 = ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10")
PUBLIC_V4 = ipaddress.IPv4Address("93.184.216.34")


def _embed(form: str, v4: ipaddress.IPv4Address) -> ipaddress.IPv6Address:
    n = int(v4)
    teredo_server = int(PUBLIC_V4)
    embedded = {
        "IPv4-mapped": (0xFFFF << 32) | n,
        "IPv4-translated": (0xFFFF << 48) | n,
        "IPv4-compatible": n,
        "6to4": (0x2002 << 112) | (n << 80) | 1,
        "Teredo (obfuscated client)": (0x2001_0000 << 96) | (teredo_server << 64) | (0xFFFF_FFFF ^ n),
        "NAT64 well-known": (0x64_FF9B << 96) | n,
        # RFC 6052 /48 layout inside the local-use prefix: 16 bits, the u octet, 16 bits
        "NAT64 local-use /48": (0x0064_FF9B_0001 << 80) | ((n >> 16) << 64) | ((n & 0xFFFF) << 40),
        "ISATAP": (0x2001_4860_0000_0001 << 64) | (0x0200_5EFE << 32) | n,
    }[form]
    return ipaddress.IPv6Address(embedded)


TRANSITION_FORMS = (
    "IPv4-mapped",
    "IPv4-translated",
    "IPv4-compatible",
    "6to4",
    "Teredo (obfuscated client)",
    "NAT64 well-known",
    "NAT64 local-use /48",
    "ISATAP",
)
non_public_v4 = st.sampled_from(NON_PUBLIC_V4).flatmap(
    lambda net: st.integers(0, ipaddress.ip_network(net).num_addresses - 1).map(
        lambda offset: ipaddress.ip_network(net)[offset]
    )
)


def test_6to4_wrapping_loopback_is_refused() -> None:
    """The red-team payload itself: 2002:7f00:1:: is 6to4 for 127.0.0.1."""
    with pytest.raises(InvalidRequest, match="non-public"):
        check_target_url("https://[2002:7f00:1::]/fhir")


@pytest.mark.parametrize("form", TRANSITION_FORMS)
@given(v4=non_public_v4)
@settings(max_examples=examples(60), deadline=None)
def test_every_transition_form_of_a_non_public_ipv4_address_is_refused(form: str, v4: ipaddress.IPv4Address) -> None:
    address = _embed(form, v4)
    assert v4 in embedded_ipv4(address) or form == "IPv4-mapped"
    with pytest.raises(InvalidRequest, match="non-public"):
        check_target_url(f"https://[{address}]/fhir")
    with pytest.raises(InvalidRequest, match="non-public"):  # and by a name that resolves to it
        check_target_url("https://ehr.example/fhir", resolve=lambda host: [str(address)])


@pytest.mark.parametrize("form", ["IPv4-mapped", "6to4"])
def test_a_transition_form_of_a_public_ipv4_address_is_accepted(form: str) -> None:
    address = _embed(form, PUBLIC_V4)
    assert check_target_url(f"https://[{address}]/fhir") == f"https://[{address}]/fhir"


def test_plain_public_ipv6_embeds_nothing_and_is_accepted() -> None:
    assert embedded_ipv4(ipaddress.IPv6Address("2606:4700:4700::1111")) == []
    assert check_target_url("https://[2606:4700:4700::1111]/fhir") == "https://[2606:4700:4700::1111]/fhir"


def test_a_plain_http_target_is_refused_naming_the_setting_that_allows_it() -> None:
    with pytest.raises(InvalidRequest) as refused:
        check_target_url("http://93.184.216.34/fhir", resolve=lambda host: ["93.184.216.34"])
    problem = refused.value.problems[0]
    assert problem.field == "base_url"
    assert "https" in problem.message
    assert "TANDEM_SYNC_REQUIRE_HTTPS=false" in problem.message
