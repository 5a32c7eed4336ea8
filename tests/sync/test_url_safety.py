"""EHR target URLs can never point us at ourselves, the cloud metadata service or the LAN (SSRF)."""

from __future__ import annotations

import pytest

from service.errors import InvalidRequest
from service.sync.url_safety import check_target_url

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
