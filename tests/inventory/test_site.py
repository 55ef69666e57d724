"""``fleetscan_site``: which site's workers scan a host (host or group var)."""

from __future__ import annotations

import pytest

from fleetscan.errors import ConfigError

from .helpers import Writer, load


def test_site_defaults_to_default(write: Writer) -> None:
    (t,) = load(write("hosts", "h1 ansible_host=127.0.0.1\n")).targets
    assert t.site == "default"


def test_group_var_sets_the_site_and_a_host_var_overrides_it(write: Writer) -> None:
    path = write(
        "hosts",
        """
        [dc1]
        a ansible_host=127.0.0.1
        b ansible_host=127.0.0.2 fleetscan_site=dmz
        [dc1:vars]
        fleetscan_site=dc1
        """,
    )
    sites = {t.name: t.site for t in load(path).targets}
    assert sites == {"a": "dc1", "b": "dmz"}


def test_nested_yaml_groups_inherit_the_site(write: Writer) -> None:
    path = write(
        "fleet.yaml",
        """
        all:
          children:
            eu:
              vars: {fleetscan_site: eu-west.1}
              children:
                web:
                  hosts: {w1: {ansible_host: 127.0.0.1}}
        """,
    )
    (t,) = load(path).targets
    assert t.site == "eu-west.1"


def test_nornir_data_sets_the_site(write: Writer) -> None:
    path = write("hosts.yaml", "h1:\n  hostname: 127.0.0.1\n  data:\n    fleetscan_site: pci\n")
    (t,) = load(path).targets
    assert t.site == "pci"


@pytest.mark.parametrize("bad", ["dc 1", "-dc1", "dc1/../x", "", "x" * 64, "dc1;rm"])
def test_a_site_that_cannot_name_a_queue_is_an_error_naming_file_line_and_field(
    write: Writer, bad: str
) -> None:
    path = write("fleet.yaml", f"all:\n  hosts:\n    h1:\n      fleetscan_site: {bad!r}\n")
    with pytest.raises(ConfigError) as err:
        load(path)
    msg = str(err.value)
    assert "fleet.yaml:4" in msg and "fleetscan_site" in msg
