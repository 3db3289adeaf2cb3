"""
The production files of deploy/ as the end-to-end tests run them: the Daphne unit's flags, and
Debian's nginx with deploy/nginx.conf rendered for a test (free ports of 127.0.0.1, files in a
directory of its own), run in the foreground by an unprivileged user.
"""

import os
import pwd
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
from pathlib import Path

from tests.servers import BASE_DIR, free_port, wait_for_port

NGINX_CONF = BASE_DIR / "deploy" / "nginx.conf"
UNIT = BASE_DIR / "deploy" / "switchboard-daphne@.service"
# The site's name in deploy/nginx.conf: clients send it as Host and as the TLS server name.
SERVER_NAME = "chat.example.com"


def unit_daphne_args() -> list[str]:
    """The Daphne options of deploy/switchboard-daphne@.service's ExecStart, without bind, port and app."""
    exec_start = re.search(r"^ExecStart=(.*?)(?<!\\)$", UNIT.read_text(), flags=re.MULTILINE | re.DOTALL).group(1)
    args = exec_start.replace("\\\n", " ").split()[1:]
    args.remove("config.asgi:application")
    for flag in ("--bind", "--port"):
        del args[args.index(flag) : args.index(flag) + 2]
    return args


def render_nginx_conf(text: str, *, upstream_ports: list[int], http_port: int, https_port: int, root: Path) -> str:
    """
    ``text`` (deploy/nginx.conf) with only what differs between a host and a test rewritten: every
    upstream's ``server 127.0.0.1:800N`` lines become one line per port of ``upstream_ports`` (same
    parameters), ``listen 80`` / ``listen 443`` become ``127.0.0.1:http_port`` / ``:https_port``, and
    the certificate, log and ``/srv/switchboard/`` paths move under ``root`` (``tls/``, ``logs/``,
    ``srv/``). Raise ``ValueError`` when one of them is no longer in the file, so a change to the
    shipped file cannot leave the test running something else.
    """

    def upstream_servers(match: re.Match) -> str:
        indent, params = re.match(r"([ \t]*)server 127\.0\.0\.1:\d+([^;\n]*);", match.group(0)).groups()
        return "".join(f"{indent}server 127.0.0.1:{port}{params};\n" for port in upstream_ports)

    rewrites = [
        (r"(?:[ \t]*server 127\.0\.0\.1:\d+[^;\n]*;\n)+", upstream_servers),
        (r"\blisten 80\b", f"listen 127.0.0.1:{http_port}"),
        (r"\blisten 443\b", f"listen 127.0.0.1:{https_port}"),
        (re.escape(f"/etc/letsencrypt/live/{SERVER_NAME}/"), f"{root}/tls/"),
        (re.escape("/var/log/nginx/"), f"{root}/logs/"),
        (re.escape("/srv/switchboard/"), f"{root}/srv/"),
    ]
    for pattern, replacement in rewrites:
        text, count = re.subn(pattern, replacement, text)
        if not count:
            raise ValueError(f"deploy/nginx.conf no longer has {pattern!r}: update tests/deploy.py")
    leftover = re.findall(r"(?<![\w.])/(?:etc|var|srv|run)/\S*", re.sub(r"#.*", "", text))
    if leftover:
        raise ValueError(f"deploy/nginx.conf has host paths the test does not move: {leftover}")
    return text


def make_certificate(directory: Path) -> Path:
    """A self-signed certificate for ``SERVER_NAME`` as ``fullchain.pem``/``privkey.pem`` in ``directory``; its path."""
    directory.mkdir(parents=True, exist_ok=True)
    cert = directory / "fullchain.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            f"/CN={SERVER_NAME}",
            "-addext",
            f"subjectAltName=DNS:{SERVER_NAME}",
            "-keyout",
            str(directory / "privkey.pem"),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert


def nginx_binary() -> str:
    """Debian's nginx (in /usr/sbin, often not on a user's PATH); scripts/ensure-nginx.sh installs it."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise RuntimeError("nginx is not installed: run scripts/ensure-nginx.sh (make test does)")
    return found


class Nginx:
    """
    nginx with deploy/nginx.conf (``render_nginx_conf``) in front of Daphne processes on
    ``upstream_ports``, in the foreground (``daemon off``) with its prefix, pid, logs and temporary
    files in a directory of its own. ``files`` (path under ``/srv/switchboard/`` -> bytes) are put
    there first, such as ``staticfiles/...`` for the ``/static/`` alias. When the tests run as root
    it runs as ``nobody``, as a host's workers would run as ``www-data``: never as root.
    """

    def __init__(self, upstream_ports: list[int], files: dict[str, bytes] | None = None):
        self.root = Path(tempfile.mkdtemp(prefix="switchboard-nginx-"))
        self.http_port, self.https_port = free_port(), free_port()
        for relative, content in (files or {}).items():
            path = self.root / "srv" / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        self.certificate = make_certificate(self.root / "tls")
        for name in ("logs", "temp"):
            (self.root / name).mkdir()
        site = render_nginx_conf(
            NGINX_CONF.read_text(),
            upstream_ports=upstream_ports,
            http_port=self.http_port,
            https_port=self.https_port,
            root=self.root,
        )
        (self.root / "switchboard.conf").write_text(site)
        temp_paths = "".join(
            f"    {kind}_temp_path {self.root}/temp/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        # The part of a host's /etc/nginx/nginx.conf that the site file relies on.
        (self.root / "nginx.conf").write_text(
            f"pid {self.root}/nginx.pid;\n"
            f"error_log {self.root}/logs/error.log info;\n"
            "worker_processes 1;\n"
            "events { worker_connections 512; }\n"
            "http {\n"
            "    include /etc/nginx/mime.types;\n"
            "    default_type application/octet-stream;\n"
            f"    access_log {self.root}/logs/access.log;\n"
            f"{temp_paths}"
            f"    include {self.root}/switchboard.conf;\n"
            "}\n"
        )
        user = None
        if os.geteuid() == 0:
            user = pwd.getpwnam("nobody")
            for path in [self.root, *self.root.rglob("*")]:
                os.chown(path, user.pw_uid, user.pw_gid)
        self.log = open(self.root / "stderr.log", "w+b")  # noqa: SIM115 (kept for the process's life)
        self.proc = subprocess.Popen(
            [
                nginx_binary(),
                "-p",
                str(self.root),
                "-c",
                str(self.root / "nginx.conf"),
                "-e",
                str(self.root / "logs" / "error.log"),
                "-g",
                "daemon off;",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            extra_groups=[] if user else None,
        )
        try:
            wait_for_port(self.https_port, self.proc, timeout=10)
        except RuntimeError as exc:
            output = self.output()
            self.stop()
            raise RuntimeError(f"{exc}\n{output}") from None

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this nginx's certificate (and checks the name, as a browser does)."""
        return ssl.create_default_context(cafile=str(self.certificate))

    def output(self) -> str:
        """nginx's stderr and error log so far."""
        texts = []
        for path in (self.root / "stderr.log", self.root / "logs" / "error.log"):
            if path.exists():
                texts.append(path.read_text(errors="replace"))
        return "\n".join(texts)

    def access_log(self) -> str:
        """The site's access log (deploy/nginx.conf's ``switchboard`` format) so far."""
        path = self.root / "logs" / "switchboard.access.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Stop nginx (SIGTERM, its fast shutdown; SIGKILL after 5 s) and remove its directory."""
        if self.proc.poll() is None:
            # Not SIGQUIT (graceful), which waits for open WebSockets: the test is done with them.
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)
