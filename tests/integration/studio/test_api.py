"""The studio's HTTP API against a real server: token, Host/Origin, paths, body size, conflicts, saves."""

from __future__ import annotations

import http.client
import json
import os
import threading
from urllib.parse import urlsplit

import pytest
import yaml

from platformctl.studio.server import MAX_BODY, make_server


class Client:
    def __init__(self, url: str):
        u = urlsplit(url)
        self.host, self.port = u.hostname, u.port
        self.token = u.query.split("token=")[1]

    def request(self, method, path, body=None, headers=None, token=True, raw=None):
        c = http.client.HTTPConnection(self.host, self.port, timeout=10)
        h = {"Host": f"127.0.0.1:{self.port}", "Content-Type": "application/json"}
        if token:
            h["X-Studio-Token"] = self.token
        h.update(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        out = r.status, r.read(), dict(r.getheaders())
        c.close()
        return out

    def api(self, name, body=None, **kw):
        status, data, _ = self.request("POST", f"/api/{name}", body or {}, **kw)
        return status, json.loads(data)


@pytest.fixture
def client(studio):
    httpd, url, project = studio
    return Client(url)


def snapshot(project):
    return {p.relative_to(project).as_posix(): p.read_bytes() for p in project.rglob("*") if p.is_file()}


def test_binds_loopback_only(studio):
    httpd, url, _ = studio
    assert httpd.server_address[0] == "127.0.0.1" and url.startswith("http://127.0.0.1:")


def test_token_required_for_page_assets_and_api(client):
    assert client.request("GET", "/")[0] == 401
    assert client.request("GET", "/?token=wrong")[0] == 401
    assert client.request("GET", "/static/app.js")[0] == 401
    status, body, headers = client.request("GET", f"/?token={client.token}")
    assert status == 200 and b"/static/app.js" in body
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert client.request("GET", "/static/app.js", headers={"Cookie": cookie.split(";")[0]})[0] == 200
    assert client.api("pipelines", token=False)[0] == 401
    assert client.api("pipelines", headers={"X-Studio-Token": "x" * 32})[0] == 401
    # the cookie alone does not authorise API calls (a cross-site page's request would carry it)
    assert client.api("pipelines", token=False, headers={"Cookie": cookie.split(";")[0]})[0] == 401
    status, data = client.api("pipelines")
    assert status == 200 and {p["file"] for p in data["pipelines"]} >= {"pipelines/example_etl.yaml"}


def test_two_starts_have_different_tokens(project):
    a, url_a = make_server(project)
    b, url_b = make_server(project)
    try:
        assert url_a.split("token=")[1] != url_b.split("token=")[1]
        assert len(url_a.split("token=")[1]) >= 32
    finally:
        a.server_close()
        b.server_close()


@pytest.mark.parametrize("host", ["evil.example:80", "127.0.0.1", "127.0.0.1:1", "localhost.evil.example", ""])
def test_foreign_host_refused(client, host):
    assert client.api("pipelines", headers={"Host": host})[0] == 403
    assert client.request("GET", f"/?token={client.token}", headers={"Host": host})[0] == 403


def test_localhost_host_allowed(client):
    assert client.api("pipelines", headers={"Host": f"localhost:{client.port}"})[0] == 200


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:1", "https://127.0.0.1"])
def test_foreign_origin_refused(client, origin):
    status, data = client.api("edit", {"file": "pipelines/example_etl.yaml", "op": {"op": "add_job", "name": "x"}},
                              headers={"Origin": origin})
    assert status == 403 and "Origin" in data["error"]


def test_same_origin_allowed(client):
    assert client.api("pipelines", headers={"Origin": f"http://127.0.0.1:{client.port}"})[0] == 200


@pytest.mark.parametrize("file", ["../flavors.yaml", "pipelines/../flavors.yaml", "/etc/passwd", "pipelines/a/b.yaml",
                                  "pipelines/x.py", "pipelines/.hidden.yaml", "pipelines\\..\\x.yaml",
                                  "pipelines/%2e%2e/x.yaml", "dags/example_etl.py", "pipelines/x.yaml\x00.py"])
def test_paths_outside_pipelines_refused(client, studio, file):
    before = snapshot(studio[2])
    for name in ("open", "save", "preview", "reload"):
        status, _ = client.api(name, {"file": file})
        assert status in (400, 403), (name, file, status)
    assert client.api("new", {"name": file})[0] in (400, 403)
    assert snapshot(studio[2]) == before


def test_symlink_out_of_pipelines_refused(client, studio, tmp_path):
    outside = tmp_path / "outside.yaml"
    outside.write_text("x: 1\n")
    os.symlink(outside, studio[2] / "pipelines" / "link.yaml")
    assert client.api("open", {"file": "pipelines/link.yaml"})[0] == 403


def test_body_over_the_limit_refused(client):
    big = json.dumps({"file": "pipelines/example_etl.yaml", "op": {"op": "set_text", "text": "x" * MAX_BODY}})
    status, data, _ = client.request("POST", "/api/edit", raw=big.encode())
    assert status == 413 and b"over the limit" in data
    assert client.request("POST", "/api/pipelines", raw=b"{}", headers={"Content-Type": "text/plain"})[0] == 415
    assert client.request("POST", "/api/pipelines", raw=b"[1]")[0] == 400
    assert client.request("POST", "/api/pipelines", raw=b"{not json")[0] == 400
    assert client.request("PUT", "/api/pipelines", body={})[0] == 405
    assert client.api("no-such-api")[0] == 404


def test_edit_save_writes_only_that_file(client, studio):
    project = studio[2]
    before = snapshot(project)
    f = "pipelines/example_etl.yaml"
    status, s = client.api("edit", {"file": f, "op": {"op": "set", "path": ["jobs", "train", "resource_flavor"],
                                                       "value": "cpu-large"}})
    assert status == 200 and s["dirty"] and s["valid"]
    status, s = client.api("save", {"file": f})
    assert status == 200 and s["saved"] == "valid" and not s["dirty"]
    after = snapshot(project)
    assert {k for k in after if after[k] != before.get(k)} == {f}
    assert set(after) == set(before)  # no temporary file left behind
    assert before[f].decode().replace("resource_flavor: cpu-medium", "resource_flavor: cpu-large") == after[f].decode()


def test_invalid_save_refused_unless_draft(client, studio):
    f = "pipelines/example_etl.yaml"
    original = (studio[2] / f).read_bytes()
    client.api("edit", {"file": f, "op": {"op": "set", "path": ["jobs", "train", "resource_flavor"], "value": "gpu-a10"}})
    status, data = client.api("save", {"file": f})
    assert status == 422 and "did you mean 'gpu-a100'" in data["error"] and "Save draft" in data["error"]
    assert (studio[2] / f).read_bytes() == original
    status, s = client.api("save", {"file": f, "draft": True})
    assert status == 200 and s["saved"] == "draft"
    assert b"resource_flavor: gpu-a10\n" in (studio[2] / f).read_bytes()


def test_conflict_when_the_file_changed_on_disk(client, studio):
    f = "pipelines/example_etl.yaml"
    path = studio[2] / f
    client.api("open", {"file": f})
    client.api("edit", {"file": f, "op": {"op": "add_job", "name": "extra", "fields": {"command": ["x"]}}})
    hand = path.read_text().replace("timeout: 10m", "timeout: 20m")
    path.write_text(hand)  # someone edits the file meanwhile
    status, s = client.api("open", {"file": f})
    assert s["conflict"] is True
    status, data = client.api("save", {"file": f})
    assert status == 409 and data["conflict"] and data["disk_text"] == hand
    assert client.api("save", {"file": f, "draft": True})[0] == 409
    assert path.read_text() == hand  # never overwritten silently
    status, s = client.api("reload", {"file": f})
    assert status == 200 and s["text"] == hand and not s["conflict"] and not s["dirty"]


def test_new_pipeline_is_created_only_on_save_and_never_over_a_file(client, studio):
    project = studio[2]
    status, s = client.api("new", {"name": "fresh"})
    assert status == 200 and s["new"] and not (project / "pipelines/fresh.yaml").exists()
    assert client.api("new", {"name": "example_etl"})[0] == 409
    assert client.api("save", {"file": "pipelines/fresh.yaml"})[0] == 422  # no jobs yet
    ops = [{"op": "add_job", "name": "a", "fields": {"command": ["run"], "docker_image": "img:1",
                                                      "resource_flavor": "cpu-small"}}]
    status, s = client.api("edit", {"file": "pipelines/fresh.yaml", "ops": ops})
    assert s["valid"], s["problems"]
    status, s = client.api("save", {"file": "pipelines/fresh.yaml"})
    assert status == 200
    assert yaml.safe_load((project / "pipelines/fresh.yaml").read_text())["jobs"]["a"]["command"] == ["run"]


def test_problems_on_nodes_and_cycle_edges(client):
    f = "pipelines/example_etl.yaml"
    status, s = client.api("edit", {"file": f, "ops": [
        {"op": "connect", "source": "load", "target": "extract"},
        {"op": "set", "path": ["jobs", "load", "resource_flavor"], "value": "cpu-smal"},
        {"op": "set", "path": ["jobs", "train", "resource_flavor"], "value": "gpu-a100"}]})
    assert status == 200 and not s["valid"]
    assert {(e["source"], e["target"]) for e in s["edges"] if e["cycle"]} == {
        ("extract", "transform"), ("transform", "train"), ("train", "load"), ("load", "extract")}
    load = next(j for j in s["jobs"] if j["name"] == "load")
    assert any("did you mean 'cpu-small'" in p["message"] and p["key"] == "resource_flavor" for p in load["problems"])
    assert any("dependency cycle" in p["message"] for p in s["problems"])
    train = next(j for j in s["jobs"] if j["name"] == "train")
    assert train["forbidden_in"] == ["dev"]  # gpu-a100 is not allowed in environments/dev.yaml
    # one user action (three ops) is one undo step
    status, s = client.api("undo", {"file": f})
    assert s["valid"] and not s["dirty"] and not s["can_undo"]
    status, s = client.api("redo", {"file": f})
    assert not s["valid"]


def test_failed_operation_changes_nothing(client):
    f = "pipelines/example_etl.yaml"
    status, before = client.api("open", {"file": f})
    status, data = client.api("edit", {"file": f, "ops": [{"op": "add_job", "name": "ok"},
                                                          {"op": "add_job", "name": "bad name"}]})
    assert status == 422 and "not a valid job name" in data["error"]
    status, after = client.api("open", {"file": f})
    assert after["text"] == before["text"] and not after["can_undo"]


def test_preview_renders_the_dag_and_totals(client):
    status, p = client.api("preview", {"file": "pipelines/example_etl.yaml"})
    assert status == 200 and p["dag_file"] == "dags/example_etl.py"
    assert "airflow" in p["python"] and "'extract'" in p["python"]
    assert p["totals"]["total"] == {"jobs": 4, "cpu": "2500m / 5", "memory": "2560Mi / 5Gi", "gpu": 0}


def test_schedule_in_plain_words(client):
    f = "pipelines/example_etl.yaml"
    _, s = client.api("edit", {"file": f, "op": {"op": "set", "path": ["dag", "schedule"], "value": "0 3 * * 1-5"}})
    assert s["schedule_words"] == "At 03:00 AM, Monday through Friday"


def test_concurrent_edits_are_serialised(client):
    f = "pipelines/example_etl.yaml"
    errors = []

    def add(i):
        status, _ = client.api("edit", {"file": f, "op": {"op": "add_job", "name": f"j{i}"}})
        if status != 200:
            errors.append(status)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _, s = client.api("open", {"file": f})
    assert not errors and {f"j{i}" for i in range(12)} <= {j["name"] for j in s["jobs"]}


def test_the_page_is_served_while_the_studio_loads_and_a_broken_project_stops_it(project):
    """serve() prints the URL before the validator's modules are imported; a project the studio cannot
    load (flavors.yaml broken) stops the server and raises the catalog's own error."""
    from platformctl.errors import PlatformError
    from platformctl.studio.server import serve

    (project / "flavors.yaml").write_text("flavors: [not, a, mapping]\n")
    urls, errors = [], []

    def run():
        try:
            serve(project, on_ready=urls.append)
        except BaseException as exc:  # noqa: BLE001 - what the CLI would get
            errors.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(30)
    assert not t.is_alive(), "the server kept running on a project it cannot load"
    assert len(urls) == 1 and urls[0].startswith("http://127.0.0.1:")
    assert len(errors) == 1 and isinstance(errors[0], PlatformError), errors
    assert "flavors.yaml" in str(errors[0])
