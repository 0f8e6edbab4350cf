"""`sdrwatch check` against the simulator served over rtl_tcp: passes on a good site, fails on a
disconnected antenna or a missing receiver."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sdrwatch.agent.config import site_config_toml
from sdrwatch.cli import main
from simserver import free_port
from test_live_health import SCENE

GOOD = SCENE.format(faults="")
NO_ANTENNA = SCENE.format(faults='[[fault]]\nkind = "antenna_off"\nat_s = 0.0\ndrop_db = 12.0\n')


def site(tmp: Path, port: int, **check) -> Path:
    cfg = tmp / "site.toml"
    cfg.write_text(site_config_toml("school-check", f"rtl_tcp://127.0.0.1:{port}", [("fm", 100.0e6, 101.4e6, True)],
                                    sample_rate_hz=1.024e6, timezone="Asia/Shanghai", sweep={"background": "none"},
                                    check={"reference_hz": 100.3e6, **check}))
    return cfg


def run(cfg: Path):
    res = CliRunner().invoke(main, ["check", "--config", str(cfg), "--format", "json"])
    items = [json.loads(line) for line in res.output.splitlines() if line.startswith("{")]
    return res.exit_code, {(i["item"], i.get("center_hz")): i for i in items}, items


@pytest.fixture(scope="module")
def server(module_sim_server):
    """``server(scene_text) -> port`` of a simulator serving it, one per scene for the whole module
    (each check connects, tunes, reads and leaves, as rtl_tcp serves one client at a time)."""
    ports: dict[str, int] = {}

    def get(text: str) -> int:
        if text not in ports:
            ports[text] = module_sim_server(text).port
        return ports[text]

    return get


@pytest.mark.timeout(120)
def test_check_passes_on_a_good_site(server, tmp_path):
    code, by, items = run(site(tmp_path, server(GOOD)))
    assert code == 0, items
    assert by[("receiver", None)]["status"] == "pass" and "tuned all 2 hops" in by[("receiver", None)]["detail"]
    ref = next(i for i in items if i["item"] == "reference")
    assert ref["status"] == "pass", ref
    assert {i["item"] for i in items} >= {"receiver", "gain", "noise_floor", "reference", "clock", "disk", "collector"}


@pytest.mark.timeout(120)
def test_check_fails_on_a_disconnected_antenna(server, tmp_path):
    code, _by, items = run(site(tmp_path, server(NO_ANTENNA)))
    assert code == 1
    ref = next(i for i in items if i["item"] == "reference")
    assert ref["status"] == "fail" and "antenna" in ref["detail"]


@pytest.mark.timeout(120)
def test_check_fails_on_a_missing_receiver(tmp_path):
    code, _by, items = run(site(tmp_path, free_port()))  # nothing listens there
    assert code == 1
    rx = next(i for i in items if i["item"] == "receiver")
    assert rx["status"] == "fail" and "does not answer" in rx["detail"]


@pytest.mark.timeout(120)
def test_check_compares_the_floor_with_the_baseline(server, tmp_path):
    """A baseline layer learned from the good scene: the same scene matches, the antenna-off one fails."""
    from sdrwatch.agent.layers import write_layer
    from sdrwatch.radio.file import SigMFWriter, open_recording
    from sdrwatch.radio.sim.scene import Scene
    from sdrwatch.replay import learn_baseline

    good = tmp_path / "good.toml"
    good.write_text(GOOD)
    sc = Scene.from_toml(good)
    with SigMFWriter(tmp_path / "base", fmt="cf32", sample_rate_hz=1.024e6) as w:
        for c in (100.316e6, 101.084e6):  # the plan's hops
            w.start_capture(c)
            w.write(sc.render(c, 1.024e6, 0, 1 << 19))
    base = learn_baseline(open_recording(tmp_path / "base"))
    (tmp_path / "state").mkdir()
    write_layer(tmp_path / "state", "pre-session", {"rx0": base}, {})
    code, _by, items = run(site(tmp_path, server(GOOD)))
    floors = [i for i in items if i["item"] == "noise_floor"]
    assert floors and all(i["status"] == "pass" for i in floors), floors
    code, _by, items = run(site(tmp_path, server(NO_ANTENNA)))
    floors = [i for i in items if i["item"] == "noise_floor"]
    assert code == 1 and floors and all(i["status"] == "fail" and "collapsed" in i["detail"] for i in floors), floors


def test_a_bad_check_table_is_one_line(tmp_path):
    res = CliRunner().invoke(main, ["check", "--config", str(site(tmp_path, 1, colour=1))])
    assert res.exit_code == 1 and res.output.startswith("error: [check] unknown key 'colour'") and res.output.count("\n") == 1
