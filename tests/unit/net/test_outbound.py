"""The outbound URL policy's decisions: which addresses and URLs O may call, without any network."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from o.config import ConfigError, settings_from
from o.net.outbound import OutboundDenied, OutboundPolicy, address_kind


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),  # the cloud metadata service
        ("fe80::1", "link-local"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "private"),
        ("fc00::1", "unique-local"),
        ("fd00:ec2::254", "unique-local"),  # the metadata service over IPv6
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("255.255.255.255", "reserved"),
        # IPv6 spellings of IPv4 addresses are judged as the address they stand for
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64
        ("2002:a00:1::1", "private"),  # 6to4 of 10.0.0.1
        # public
        ("8.8.8.8", None),
        ("172.32.0.1", None),
        ("2606:4700:4700::1111", None),
        ("::ffff:8.8.8.8", None),
    ],
)
def test_address_kinds(address: str, kind: str | None) -> None:
    assert address_kind(ip_address(address)) == kind


def test_the_default_policy_allows_public_addresses_only() -> None:
    policy = OutboundPolicy()
    assert policy.address_refusal(ip_address("8.8.8.8")) is None
    assert policy.address_refusal(ip_address("127.0.0.1")) == "loopback"
    assert policy.address_refusal(ip_address("169.254.169.254")) == "link-local"


def test_loopback_and_cidrs_can_be_allowed_and_nothing_more() -> None:
    policy = OutboundPolicy.allowing(["10.0.0.0/8", "fd00::/8"], allow_loopback=True)
    for allowed in ("127.0.0.1", "::1", "10.9.9.9", "::ffff:10.1.1.1", "fd00::5"):
        assert policy.address_refusal(ip_address(allowed)) is None, allowed
    assert policy.address_refusal(ip_address("192.168.0.1")) == "private"
    assert policy.address_refusal(ip_address("169.254.169.254")) == "link-local"
    assert policy.address_refusal(ip_address("fc00::1")) == "unique-local"
    # one address, not the range around it
    single = OutboundPolicy.allowing(["127.0.0.1"])
    assert single.address_refusal(ip_address("127.0.0.1")) is None
    assert single.address_refusal(ip_address("127.0.0.2")) == "loopback"


def test_the_settings_decide_loopback_by_where_o_runs() -> None:
    local = settings_from({})
    aws = settings_from({"O_RUNTIME": "lambda"})
    assert OutboundPolicy.from_settings(local.outbound, local.runtime).allow_loopback is True
    assert OutboundPolicy.from_settings(aws.outbound, aws.runtime).allow_loopback is False
    explicit = settings_from({"O_OUTBOUND_ALLOW_LOOPBACK": "false", "O_OUTBOUND_ALLOW": "10.0.0.0/8, ollama.internal"})
    policy = OutboundPolicy.from_settings(explicit.outbound, explicit.runtime)
    assert not policy.allow_loopback and policy.allowed_hosts == frozenset({"ollama.internal"})
    assert policy.address_refusal(ip_address("10.0.0.7")) is None


def test_a_bad_allow_entry_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="O_OUTBOUND_ALLOW"):
        settings_from({"O_OUTBOUND_ALLOW": "http://not-a-host/"})


@pytest.mark.parametrize(
    ("url", "refusal"),
    [
        ("https://api.openai.com/v1", None),
        ("http://localhost:11434", None),  # a name: judged on what it resolves to, when connecting
        ("http://8.8.8.8/v1", None),
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254 is a link-local address"),
        ("http://[::1]:8080/", "::1 is a loopback address"),
        ("http://[::ffff:7f00:1]/", "is a loopback address"),
        ("http://10.0.0.1/", "10.0.0.1 is a private address"),
        ("file:///etc/passwd", "is not an http or https URL"),
        ("gopher://example.com/", "is not an http or https URL"),
        ("http:///path", "names no host"),
        ("http://example.com:99999/", "is not a valid URL"),
    ],
)
def test_url_refusals_before_any_lookup(url: str, refusal: str | None) -> None:
    found = OutboundPolicy().url_refusal(url)
    if refusal is None:
        assert found is None
    else:
        assert found is not None and refusal in found


def test_an_allowed_host_name_is_trusted_whatever_it_resolves_to() -> None:
    policy = OutboundPolicy.allowing(["Ollama.Internal."])
    assert policy.connectable("ollama.internal", ["10.0.0.5"]) == ["10.0.0.5"]
    assert policy.url_refusal("http://ollama.internal:11434/v1") is None


def test_connectable_keeps_the_allowed_addresses_and_refuses_when_none_is() -> None:
    policy = OutboundPolicy()
    assert policy.connectable("mixed.test", ["169.254.169.254", "8.8.8.8"]) == ["8.8.8.8"]
    with pytest.raises(OutboundDenied) as info:
        policy.connectable("rebind.test", ["169.254.169.254", "10.0.0.1"])
    assert "rebind.test (169.254.169.254) is a link-local address" in info.value.message
    assert info.value.status_code == 422 and info.value.details == {"host": "rebind.test", "address": "169.254.169.254"}
    with pytest.raises(OutboundDenied, match="resolved to no address"):
        policy.connectable("empty.test", [])


def test_check_url_raises_a_4xx_naming_the_setting() -> None:
    with pytest.raises(OutboundDenied, match="O_OUTBOUND_ALLOW_LOOPBACK") as info:
        OutboundPolicy().check_url("http://127.0.0.1:11434/v1")
    assert info.value.status_code == 422 and info.value.code == "outbound_denied"
