"""
The images of the rehearsal: the stand-ins for what cannot be pulled here, and the project's own.

Stand-ins (built once per machine, rebuilt only when their inputs change, keyed by a label):
- ``localhost/rehearsal-debian-rootfs:bookworm``: a Debian root file system made with debootstrap;
- ``astrocrpublic.azurecr.io/runtime:3.3-8``: the Astro Runtime stand-in (``standin/Containerfile``),
  tagged with the Dockerfile's FROM name so that the project builds on it unchanged;
- ``localhost/rehearsal-postgres:15``: the metadata database (``postgres/Containerfile``).
The project image is built from the unchanged Dockerfile the way the Astro CLI builds it.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from astro_rehearsal.podman import ContainerError, run

HERE = Path(__file__).resolve().parent
ROOTFS_IMAGE = "localhost/rehearsal-debian-rootfs:bookworm"
POSTGRES_IMAGE = "localhost/rehearsal-postgres:15"
INPUTS_LABEL = "io.astronomer.rehearsal.inputs"
#: Extra CAs the machine's egress needs (copied into the root file system so pip and apt work).
HOST_EXTRA_CAS = Path("/usr/local/share/ca-certificates")
DEBIAN_MIRROR = "http://deb.debian.org/debian"


def runtime_image_name(project_root: Path) -> str:
    """The Dockerfile's ``FROM`` image: the tag the Runtime stand-in must carry."""
    for line in (project_root / "Dockerfile").read_text().splitlines():
        if line.strip().upper().startswith("FROM "):
            return line.split()[1]
    raise ContainerError("the Dockerfile has no FROM line")


def image_exists(name: str) -> bool:
    return run(["podman", "image", "exists", name], check=False, quiet=True).returncode == 0


def _label(name: str) -> str:
    result = run(
        ["podman", "image", "inspect", name, "--format", f'{{{{index .Labels "{INPUTS_LABEL}"}}}}'],
        check=False,
        quiet=True,
    )
    return result.stdout.strip() if result.returncode == 0 else ""


def ensure_rootfs(work_dir: Path) -> bool:
    """Import a minimal Debian bookworm with Python; returns True when it had to be made."""
    if image_exists(ROOTFS_IMAGE):
        return False
    if shutil.which("debootstrap") is None:
        raise ContainerError(f"debootstrap is missing: run `sudo {HERE / 'setup-podman.sh'}`")
    rootfs = work_dir / "rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    run(
        [
            "debootstrap",
            "--variant=minbase",
            "--include=python3,python3-venv,python3-pip,ca-certificates",
            "bookworm",
            str(rootfs),
            DEBIAN_MIRROR,
        ],
        quiet=True,
    )
    extra_cas = sorted(HOST_EXTRA_CAS.glob("*.crt")) if HOST_EXTRA_CAS.is_dir() else []
    for certificate in extra_cas:
        shutil.copy2(certificate, rootfs / "usr/local/share/ca-certificates" / certificate.name)
    if extra_cas:
        run(["chroot", str(rootfs), "update-ca-certificates"], quiet=True)
    run(["tar", "-C", str(rootfs), "-cf", str(work_dir / "rootfs.tar"), "."], quiet=True)
    run(["podman", "import", str(work_dir / "rootfs.tar"), ROOTFS_IMAGE], quiet=True)
    shutil.rmtree(rootfs, ignore_errors=True)
    (work_dir / "rootfs.tar").unlink(missing_ok=True)
    return True


def ensure_built(name: str, context_dir: Path, extra_files: dict[str, Path] | None = None) -> bool:
    """Build ``context_dir/Containerfile`` as ``name`` unless an image of the same inputs exists."""
    files = {p.name: p for p in sorted(context_dir.iterdir()) if p.is_file()} | (extra_files or {})
    digest = hashlib.sha256()
    for file_name, path in sorted(files.items()):
        digest.update(file_name.encode() + b"\0" + path.read_bytes() + b"\0")
    inputs = digest.hexdigest()[:16]
    if _label(name) == inputs:
        return False
    with tempfile.TemporaryDirectory() as context:
        for file_name, path in files.items():
            shutil.copy2(path, Path(context) / file_name)
        _build(name, Path(context) / "Containerfile", Path(context), f"--label={INPUTS_LABEL}={inputs}")
    return True


def build_project_image(project_root: Path, name: str) -> None:
    """``astro dev start``'s build: the project's Dockerfile, Docker format (the CLI's podman path)."""
    _build(name, project_root / "Dockerfile", project_root)


def _build(name: str, containerfile: Path, context: Path, *options: str) -> None:
    # Docker format: ONBUILD steps survive only in it (as the Astro CLI builds with podman).
    argv = ["podman", "build", "--quiet", "--format", "docker", *options, "-t", name]
    run([*argv, "-f", str(containerfile), str(context)], quiet=True)


#: What must never be in the deployed image: (description, shell test that succeeds when it is there).
FORBIDDEN_IN_IMAGE = (
    ("dbt Core", "python -c 'import importlib.util as u, sys; sys.exit(u.find_spec(\"dbt\") is None)'"),
    ("trustme", "python -c 'import importlib.util as u, sys; sys.exit(u.find_spec(\"trustme\") is None)'"),
    ("local-only code (local/)", "test -e /usr/local/airflow/local"),
    ("the local dbt Cloud package", "python -c 'import dbt_cloud_local'"),
    ("benchmarks (bench/)", "test -e /usr/local/airflow/bench"),
    ("docs (docs/)", "test -e /usr/local/airflow/docs"),
    ("version locks (constraints/)", "test -e /usr/local/airflow/constraints"),
    ("the local test suites (local/tests)", "test -e /usr/local/airflow/local/tests"),
    ("a dbt virtualenv", "test -e /usr/local/airflow/dbt_venv"),
)


def check_lean(image: str) -> list[str]:
    """What the image holds that it should not (empty when lean)."""
    script = "; ".join(f"if {test} 2>/dev/null; then echo '{what}'; fi" for what, test in FORBIDDEN_IN_IMAGE)
    return run(
        ["podman", "run", "--rm", "--network", "none", image, "bash", "-c", script], quiet=True
    ).stdout.split("\n")[:-1]


def has_distribution(image: str, distribution: str) -> bool:
    """Whether ``distribution`` is installed in the image (``astro-run-dag``: ``astro dev start`` adds it)."""
    probe = f"import importlib.metadata as m; m.version({distribution!r})"
    return run(["podman", "run", "--rm", "--network", "none", image, "python", "-c", probe], check=False,
               quiet=True).returncode == 0  # fmt: skip


def pytest_in_image(project_root: Path, image: str, test_path: str, folders: tuple[str, ...]) -> int:
    """``astro dev pytest``/``astro dev parse``: a bare container, the project ``folders`` copied in."""
    name = "astro-pytest"
    run(["podman", "rm", "-f", name], check=False, quiet=True)
    env_file = project_root / ".env"
    env_args = ["--env-file", str(env_file)] if env_file.exists() else []
    run(["podman", "create", "-i", "--name", name, *env_args, image, "pytest", test_path], quiet=True)
    try:
        for folder in folders:
            if (project_root / folder).exists():
                run(["podman", "cp", str(project_root / folder), f"{name}:/usr/local/airflow/"], quiet=True)
        run(["podman", "start", "-a", name], check=False)
        code = run(["podman", "inspect", name, "--format", "{{.State.ExitCode}}"], quiet=True).stdout
        return int(code.strip())
    finally:
        run(["podman", "rm", "-f", name], check=False, quiet=True)
