"""docker-compose.yaml and the Dockerfiles: the official Airflow 3 stack shape, adapted to orchard.

No Docker engine is needed: the file is parsed, and Compose's variable interpolation is applied by a small
re-implementation so both targets (real AWS by default, the sandbox with the `local` profile) are checked.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from local_aws.stack.environment import LOCAL_EXECUTOR

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yaml"
DOCKERFILES = [ROOT / "Dockerfile", ROOT / "local_aws" / "Dockerfile"]
AIRFLOW_SERVICES = [
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
]
LONG_RUNNING = ["airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"]
CELERY_SERVICES = ["redis", "airflow-worker"]
SANDBOX_URL = "http://local-aws:4566"


# --- Compose interpolation (compose-spec "Interpolation"), enough for this file -------------------------

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def interpolate(text: str, env: dict[str, str]) -> str:
    """${VAR}, $VAR, ${VAR:-x}, ${VAR-x}, ${VAR:+x}, ${VAR+x}, ${VAR:?e}, ${VAR?e}, nesting, and $$."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            end = _closing_brace(text, i + 2)
            out.append(_expand(text[i + 2 : end], env))
            i = end + 1
        elif text[i] == "$" and (match := _NAME.match(text, i + 1)):
            out.append(env.get(match.group(), ""))
            i = match.end()
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    depth = 1
    for index in range(start, len(text)):
        if text.startswith("${", index):
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    raise ValueError(f"unclosed ${{ in {text!r}")


def _expand(expression: str, env: dict[str, str]) -> str:
    match = _NAME.match(expression)
    assert match, f"bad variable expression {expression!r}"
    name, rest = match.group(), expression[match.end() :]
    value, is_set = env.get(name, ""), name in env
    for operator in (":-", "-", ":+", "+", ":?", "?"):
        if rest.startswith(operator):
            arg = interpolate(rest[len(operator) :], env)
            present = bool(value) if operator.startswith(":") else is_set
            if operator.endswith("-"):
                return value if present else arg
            if operator.endswith("+"):
                return arg if present else ""
            if not present:
                raise ValueError(f"required variable {name} is missing: {arg}")
            return value
    assert rest == "", f"unsupported interpolation {expression!r}"
    return value


def interpolate_tree(node, env: dict[str, str]):
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env) for key, value in node.items()}
    return node


def test_interpolation_helper_follows_the_spec():
    env = {"SET": "v", "EMPTY": ""}
    assert interpolate("${SET:-d} ${EMPTY:-d} ${NOPE:-d} ${EMPTY-d} ${NOPE-d}", env) == "v d d  d"
    assert interpolate("${SET:+r}|${EMPTY:+r}|${EMPTY+r}|${NOPE+r}", env) == "r||r|"
    assert interpolate("${NOPE:-${SET:+nested}} $$HOSTNAME $SET", env) == "nested $HOSTNAME v"
    with pytest.raises(ValueError):
        interpolate("${NOPE:?needed}", env)


# --- Fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def aws_stack(raw) -> dict:
    """The stack as `docker compose up` resolves it with no .env: the real-AWS target."""
    return interpolate_tree(raw, {})


@pytest.fixture(scope="module")
def local_stack(raw) -> dict:
    """The stack as `AWS_ENDPOINT_URL=http://local-aws:4566 docker compose --profile local up` resolves it."""
    return interpolate_tree(raw, {"AWS_ENDPOINT_URL": SANDBOX_URL})


@pytest.fixture(scope="module")
def celery_stack(raw) -> dict:
    """The stack as `AIRFLOW_EXECUTOR=CeleryExecutor docker compose --profile celery up` resolves it."""
    return interpolate_tree(raw, {"AIRFLOW_EXECUTOR": "CeleryExecutor"})


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


# --- Services ----------------------------------------------------------------------------------------------


def test_required_services_and_celery_only_in_its_profile(aws_stack):
    services = aws_stack["services"]
    for name in ["postgres", "local-aws", *AIRFLOW_SERVICES]:
        assert name in services, name
    assert "flower" not in services
    for name in CELERY_SERVICES:
        assert services[name]["profiles"] == ["celery"], f"{name} runs only with --profile celery"
    for name, service in services.items():
        if name not in (*CELERY_SERVICES, "airflow-cli"):
            celery_keys = {k for k in environment(service) if k.startswith("AIRFLOW__CELERY__")}
            rest = {k: v for k, v in service.items() if k != "environment"}
            assert "celery" not in json.dumps(rest).lower(), name
            assert not celery_keys or environment(service)["AIRFLOW__CORE__EXECUTOR"] == LOCAL_EXECUTOR


def test_celery_profile_runs_workers_on_the_common_image_with_redis(celery_stack, raw):
    services = celery_stack["services"]
    worker, redis = services["airflow-worker"], services["redis"]
    env = environment(worker)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    for name in LONG_RUNNING:  # every Airflow service agrees on the executor
        assert environment(services[name])["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
    broker = urlsplit(env["AIRFLOW__CELERY__BROKER_URL"])
    assert broker.scheme == "redis" and broker.hostname == "redis" and broker.port == 6379
    backend = urlsplit(env["AIRFLOW__CELERY__RESULT_BACKEND"].removeprefix("db+"))
    assert backend.hostname == "postgres" and backend.path == "/airflow"
    assert worker["command"] == "celery worker" and env["DUMB_INIT_SETSID"] == "0"
    assert worker["image"] == services["airflow-scheduler"]["image"]
    assert worker["volumes"] == services["airflow-scheduler"]["volumes"]
    assert "healthcheck" in worker and "redis-cli" in json.dumps(redis["healthcheck"])
    assert worker["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    assert services["airflow-scheduler"]["depends_on"]["redis"] == {
        "condition": "service_healthy",
        "required": False,
    }
    assert "AIRFLOW_EXECUTOR=CeleryExecutor docker compose --profile celery up" in COMPOSE_FILE.read_text()


def test_postgres_16_with_a_healthcheck(aws_stack):
    postgres = aws_stack["services"]["postgres"]
    assert postgres["image"] == "postgres:16"
    assert "pg_isready" in postgres["healthcheck"]["test"]


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_airflow_services_share_the_common_image_env_and_mounts(aws_stack, raw, name):
    service = aws_stack["services"][name]
    common = aws_stack["x-airflow-common"]
    assert service["build"] == {"context": ".", "dockerfile": "Dockerfile"} == common["build"]
    assert service["image"] == common["image"] == "orchard/airflow:0.1.0"
    env = environment(service)
    for key, value in environment(common).items():
        assert env.get(key) == value, f"{name}: {key}"
    targets = {volume.split(":")[1]: volume.split(":")[0] for volume in service["volumes"]}
    for folder in ("dags", "plugins", "logs", "config"):
        assert targets.get(f"/opt/airflow/{folder}") == f"./{folder}", f"{name} must mount ./{folder}"
    # As on MWAA, Airflow gets no job code: include/ reaches AWS as images or via `make deploy`.
    assert not any(source.rstrip("/").endswith("include") for source in targets.values()), name
    # The raw file keeps AIRFLOW_UID configurable, as the official stack does.
    if name != "airflow-init":
        assert raw["services"][name]["user"] == "${AIRFLOW_UID:-50000}:0"


def test_executor_and_database_are_consistent(aws_stack):
    env = environment(aws_stack["x-airflow-common"])
    assert env["AIRFLOW__CORE__EXECUTOR"] == LOCAL_EXECUTOR
    db = urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    postgres = environment(aws_stack["services"]["postgres"])
    assert db.scheme.startswith("postgresql")
    assert db.hostname == "postgres" and db.hostname in aws_stack["services"]
    assert (db.username, db.password) == (postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"])
    assert db.path.lstrip("/") == postgres["POSTGRES_DB"]
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false"
    # the AIRFLOW__CELERY__* keys are read only by CeleryExecutor (test_celery_profile_*)
    # Airflow 3: tasks reach the API server, and all services share the token secret.
    assert urlsplit(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]).netloc == "airflow-apiserver:8080"
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"]


def test_api_server_exposes_8080(aws_stack):
    apiserver = aws_stack["services"]["airflow-apiserver"]
    assert apiserver["command"] == "api-server"
    assert "8080:8080" in apiserver["ports"]
    assert "localhost:8080" in " ".join(apiserver["healthcheck"]["test"])


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_services_have_healthchecks_and_wait_for_init(aws_stack, name):
    service = aws_stack["services"][name]
    assert service["healthcheck"]["test"]
    assert service["restart"] == "always"
    depends = service["depends_on"]
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["airflow-init"]["condition"] == "service_completed_successfully"
    # The sandbox is waited for when the `local` profile runs it, and optional otherwise.
    assert depends["local-aws"] == {"condition": "service_healthy", "required": False}


def test_init_migrates_and_creates_the_admin(aws_stack):
    init = aws_stack["services"]["airflow-init"]
    env = environment(init)
    assert env["_AIRFLOW_DB_MIGRATE"] == "true" and env["_AIRFLOW_WWW_USER_CREATE"] == "true"
    assert set(init["depends_on"]) == {"postgres"}, "init needs only the database"


# --- The sandbox and the AWS endpoint ------------------------------------------------------------------


def test_local_aws_service_runs_the_sandbox_in_profile_local(aws_stack):
    sandbox = aws_stack["services"]["local-aws"]
    assert sandbox["profiles"] == ["local"]
    assert sandbox["build"] == {"context": ".", "dockerfile": "local_aws/Dockerfile"}
    assert sandbox["command"] == ["python", "-m", "local_aws", "serve", "--host", "0.0.0.0", "--port", "4566"]
    assert "4566:4566" in sandbox["ports"]
    assert "4566" in " ".join(sandbox["healthcheck"]["test"])
    for name in AIRFLOW_SERVICES:
        assert "profiles" not in aws_stack["services"][name], f"{name} must run in both targets"


def test_without_the_profile_the_stack_targets_real_aws(aws_stack):
    for name in AIRFLOW_SERVICES:
        env = environment(aws_stack["services"][name])
        assert env["AWS_ENDPOINT_URL"] == "", "an empty endpoint is what makes boto3 use AWS"
        assert env["AWS_ACCESS_KEY_ID"] == "" and env["AWS_SECRET_ACCESS_KEY"] == ""
        assert env["AWS_DEFAULT_REGION"] == "us-east-1"


def test_with_the_local_profile_airflow_reaches_the_sandbox(local_stack):
    sandbox = local_stack["services"]["local-aws"]
    port = sandbox["command"][sandbox["command"].index("--port") + 1]
    for name in AIRFLOW_SERVICES:
        env = environment(local_stack["services"][name])
        endpoint = urlsplit(env["AWS_ENDPOINT_URL"])
        assert endpoint.hostname == "local-aws" and str(endpoint.port) == port
        assert env["AWS_ACCESS_KEY_ID"] == "testing" and env["AWS_SECRET_ACCESS_KEY"] == "testing"


def test_explicit_credentials_win_over_the_sandbox_defaults(raw):
    stack = interpolate_tree(raw, {"AWS_ENDPOINT_URL": SANDBOX_URL, "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE"})
    assert environment(stack["services"]["airflow-scheduler"])["AWS_ACCESS_KEY_ID"] == "AKIAEXAMPLE"


@pytest.mark.parametrize(
    ("env", "region"), [({}, "us-east-1"), ({"AWS_DEFAULT_REGION": "eu-west-3"}, "eu-west-3")]
)
def test_aws_connection_json_carries_region_and_retries(raw, env, region):
    stack = interpolate_tree(raw, env)
    for name in AIRFLOW_SERVICES:
        connection = json.loads(environment(stack["services"][name])["AIRFLOW_CONN_AWS_DEFAULT"])
        assert connection["conn_type"] == "aws"
        assert connection["extra"]["region_name"] == region
        assert connection["extra"]["config_kwargs"] == {"retries": {"mode": "standard", "max_attempts": 10}}
        assert "endpoint_url" not in connection["extra"], "the endpoint comes from AWS_ENDPOINT_URL only"


def test_orchard_settings_pass_through_match_the_settings_module(aws_stack):
    settings = pytest.importorskip("orchard.settings")
    expected = {settings.env_name(f.name) for f in dataclasses.fields(settings.Settings)}
    for name in AIRFLOW_SERVICES:
        env = environment(aws_stack["services"][name])
        passed = {key for key in env if key.startswith("ORCHARD_")}
        assert passed == expected, name
        assert all(env[key] == "" for key in passed), "unset settings must reach the containers empty"


def test_every_variable_the_file_reads_is_documented(raw):
    text = COMPOSE_FILE.read_text()
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    used = set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", text))
    undocumented = {name for name in used if name not in header and not name.startswith("ORCHARD_")}
    assert not undocumented, f"document these variables in the header: {sorted(undocumented)}"


# --- Dockerfiles --------------------------------------------------------------------------------------------


def base_images(dockerfile: Path) -> list[str]:
    images = []
    for line in dockerfile.read_text().splitlines():
        match = re.match(r"\s*FROM\s+(?:--platform=\S+\s+)?(\S+)", line, re.IGNORECASE)
        if match:
            images.append(match.group(1))
    return images


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_dockerfiles_pin_their_base_images(dockerfile):
    images = base_images(dockerfile)
    assert images, f"{dockerfile} has no FROM"
    for image in images:
        name, _, digest = image.partition("@")
        tag = name.rpartition(":")[2] if ":" in name.rpartition("/")[2] else ""
        assert tag or digest, f"{image}: pin a tag or digest"
        assert tag != "latest", f"{image}: 'latest' is not a pin"
        assert re.search(r"\d", tag or digest), f"{image}: pin a versioned tag"


def test_airflow_image_matches_the_pinned_requirements():
    pinned = re.search(r"^apache-airflow==(\S+)", (ROOT / "requirements.txt").read_text(), re.MULTILINE)
    assert pinned, "requirements.txt pins apache-airflow"
    assert base_images(ROOT / "Dockerfile") == [f"apache/airflow:{pinned.group(1)}-python3.11"]
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER airflow$", text, re.MULTILINE)
    assert re.search(r"pip install .*-r \S*requirements\.txt -c \S*constraints\.txt", text)


def test_sandbox_image_has_java_and_the_dev_requirements():
    text = (ROOT / "local_aws" / "Dockerfile").read_text()
    (image,) = base_images(ROOT / "local_aws" / "Dockerfile")
    assert image.startswith("python:3.11.") and "slim" in image
    assert "openjdk-17" in text
    assert re.search(r"pip install .*-r \S*requirements-dev\.txt -c \S*constraints\.txt", text)
    assert re.search(r"^USER \S+", text, re.MULTILINE), "the sandbox does not run as root"


def test_compose_images_are_pinned(aws_stack):
    for name, service in aws_stack["services"].items():
        image = service.get("image", "")
        assert image and ":" in image and not image.endswith(":latest"), f"{name}: {image!r}"


def test_dockerignore_keeps_the_context_small_and_secret_free():
    patterns = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    for required in (".venv", ".git", "**/__pycache__", ".env"):
        assert required in patterns, required


def test_airflow_shares_one_botocore_loader_per_process(aws_stack):
    env = environment(aws_stack["x-airflow-common"])
    assert env["AIRFLOW__AWS__SESSION_FACTORY"] == "orchard.aws_session.SharedLoaderSessionFactory"
