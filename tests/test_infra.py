"""The team stack's deployment files, checked offline: infra/compose.yaml (through `docker
compose config`), infra/worker.Dockerfile, .dockerignore, infra/k8s/ (against the Kubernetes
OpenAPI schemas that kubernetes-validate bundles) and the Kubernetes work pool's job template
(through Prefect's own validation and templating).

Nothing here starts a container or talks to a cluster: building the image and applying the
manifests need a Docker daemon and a cluster, which CI does not have.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
import uuid
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from modalops.services import DEFAULT_WORK_POOL
from tests.conftest import REPO, _initdb, _postgres_answers, private_postgres

INFRA = REPO / "infra"
K8S = INFRA / "k8s"
COMPOSE = INFRA / "compose.yaml"
ENV_EXAMPLE = INFRA / ".env.example"
DOCKERFILE = INFRA / "worker.Dockerfile"
JOB_TEMPLATE = K8S / "base-job-template.json"
# Only these come from the env file; compose.yaml must give them no default.
SECRET_VARS = ("POSTGRES_PASSWORD", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD")
SERVICES = {"postgres", "minio", "minio-init", "prefect-server", "mlflow", "worker"}
K8S_VERSION = "1.31.0"  # a version current managed clusters run; the schemas are bundled
K8S_POOL = "modalops-k8s"


# ---- docker compose ------------------------------------------------------------------------------


def compose_command() -> list[str]:
    """`docker compose` (v2 plugin), else the standalone `docker-compose`; fail if neither."""
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    pytest.fail(
        "neither `docker compose` (the v2 CLI plugin) nor `docker-compose` is installed; "
        "tests/test_infra.py validates infra/compose.yaml with `config` (no daemon needed): "
        "install one, e.g. `apt-get install docker-compose`"
    )


def _env_without_secrets() -> dict[str, str]:
    # a variable in the caller's environment would win over the env file
    return {k: v for k, v in os.environ.items() if k not in SECRET_VARS}


def run_compose_config(env_file: Path) -> subprocess.CompletedProcess:
    cmd = [*compose_command(), "--env-file", str(env_file), "-f", str(COMPOSE), "config"]
    return subprocess.run(
        cmd, capture_output=True, text=True, env=_env_without_secrets(), cwd=REPO, timeout=60
    )


def env_file_values(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{path.name}: line {line!r} is not KEY=value"
            out[key.strip()] = value.strip()
    return out


@pytest.fixture(scope="module")
def markers() -> dict[str, str]:
    """A unique value per secret, so the rendered config shows where each one went."""
    return {
        var: f"marker{var.lower().replace('_', '')}{uuid.uuid4().hex[:8]}" for var in SECRET_VARS
    }


@pytest.fixture(scope="module")
def compose_config(tmp_path_factory, markers) -> dict:
    """`compose config` with .env.example's settings and marker secrets, parsed."""
    values = env_file_values(ENV_EXAMPLE) | markers
    env_file = tmp_path_factory.mktemp("compose") / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    result = run_compose_config(env_file)
    assert result.returncode == 0, f"compose config failed:\n{result.stderr}"
    return yaml.safe_load(result.stdout)


def test_compose_config_accepts_the_committed_env_example():
    result = run_compose_config(ENV_EXAMPLE)
    assert result.returncode == 0, f"`compose config` with infra/.env.example:\n{result.stderr}"
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) == SERVICES


@pytest.mark.parametrize("missing", SECRET_VARS)
def test_compose_refuses_to_render_without_each_secret(tmp_path, missing):
    values = {k: v for k, v in env_file_values(ENV_EXAMPLE).items() if k != missing}
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    result = run_compose_config(env_file)
    assert result.returncode != 0, f"compose rendered without {missing}: it has a default"
    assert f"set {missing} in infra/.env" in result.stderr, result.stderr


def test_no_secret_is_inlined_and_the_env_example_covers_every_variable():
    text = "\n".join(re.sub(r"(^|\s)#.*", "", line) for line in COMPOSE.read_text().splitlines())
    referenced = set(re.findall(r"\$\{(\w+)", text))
    example = env_file_values(ENV_EXAMPLE)
    assert referenced <= set(example), f".env.example lacks {sorted(referenced - set(example))}"
    for var in SECRET_VARS:
        uses = re.findall(rf"\$\{{{var}([^}}]*)\}}", text)
        assert uses, f"compose.yaml never uses {var}"
        assert all(u.startswith(":?") for u in uses), f"{var} has a default in compose.yaml: {uses}"
    # the example's placeholder secrets appear nowhere but in the example
    deployable = [COMPOSE, DOCKERFILE, *(p for p in sorted(K8S.rglob("*")) if p.is_file())]
    for var in SECRET_VARS:
        for path in deployable:
            assert example[var] not in path.read_text(), f"{path.name} inlines {var}'s value"
    # the real env file is never committed: git ignores it
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "infra/.env"], cwd=REPO, capture_output=True
    )
    assert ignored.returncode == 0, "infra/.env is not git-ignored"


def _port_bindings(service: dict) -> list[tuple[str, int, int]]:
    """(host_ip, published, target) from either the short or the long port syntax."""
    out = []
    for port in service.get("ports", []):
        if isinstance(port, dict):  # compose v2 prints the long syntax
            out.append((port.get("host_ip", ""), int(port["published"]), int(port["target"])))
        else:  # docker-compose 1.x: "127.0.0.1:4200:4200/tcp"
            parts = str(port).split("/")[0].split(":")
            host_ip = parts[0] if len(parts) == 3 else ""
            out.append((host_ip, int(parts[-2]), int(parts[-1])))
    return out


def test_every_published_port_binds_localhost_only(compose_config):
    published = {}
    for name, service in compose_config["services"].items():
        for host_ip, host_port, target in _port_bindings(service):
            assert host_ip == "127.0.0.1", f"{name} publishes {host_port} on {host_ip or 'all'}"
            published[name, target] = host_port
    assert published == {
        ("postgres", 5432): 5432,
        ("minio", 9000): 9000,
        ("minio", 9001): 9001,
        ("prefect-server", 4200): 4200,
        ("mlflow", 5000): 5000,
    }


def _depends(service: dict) -> dict[str, str]:
    deps = service.get("depends_on", {})
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {k: v.get("condition", "service_started") for k, v in deps.items()}


def test_services_start_in_order_and_report_health(compose_config):
    services = compose_config["services"]
    healthy, done = "service_healthy", "service_completed_successfully"
    assert _depends(services["minio-init"]) == {"minio": healthy}
    assert _depends(services["prefect-server"]) == {"postgres": healthy}
    assert _depends(services["mlflow"]) == {"postgres": healthy, "minio-init": done}
    assert _depends(services["worker"]) == {
        "prefect-server": healthy,
        "mlflow": healthy,
        "minio-init": done,
    }
    for name in SERVICES - {"minio-init"}:
        check = services[name].get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
        assert services[name].get("restart") == "unless-stopped", name
    assert services["minio-init"].get("restart") == "no"  # one-shot
    assert "mc mb --ignore-existing" in " ".join(services["minio-init"]["command"])


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def test_prefect_and_mlflow_run_on_postgres_with_artifacts_in_minio(compose_config, markers):
    services = compose_config["services"]
    password, s3_user, s3_secret = (markers[v] for v in SECRET_VARS)

    postgres = services["postgres"]
    mounts = [str(v) if not isinstance(v, dict) else f"{v['source']}:{v['target']}" for v in
              postgres["volumes"]]  # fmt: skip
    init = [m for m in mounts if "/docker-entrypoint-initdb.d/" in m]
    assert init and init[0].split(":")[0].endswith("infra/create_databases.sql"), mounts
    sql = (INFRA / "create_databases.sql").read_text()
    assert re.search(r"CREATE DATABASE prefect;", sql) and re.search(
        r"CREATE DATABASE mlflow;", sql
    )
    assert any(m.startswith("postgres-data:") for m in mounts), mounts
    assert any(str(v).startswith("minio-data:") or (isinstance(v, dict) and v["source"] ==
               "minio-data") for v in services["minio"]["volumes"])  # fmt: skip
    assert {"postgres-data", "minio-data"} <= set(compose_config["volumes"])
    assert _env(postgres)["POSTGRES_PASSWORD"] == password

    prefect_db = _env(services["prefect-server"])["PREFECT_SERVER_DATABASE_CONNECTION_URL"]
    assert prefect_db == f"postgresql+asyncpg://modalops:{password}@postgres:5432/prefect"
    assert services["prefect-server"]["command"][:3] == ["prefect", "server", "start"]

    mlflow_env = _env(services["mlflow"])
    assert mlflow_env["MLFLOW_BACKEND_STORE_URI"] == (
        f"postgresql+psycopg://modalops:{password}@postgres:5432/mlflow"
    )
    assert mlflow_env["MLFLOW_ARTIFACTS_DESTINATION"] == "s3://modalops/mlflow"
    assert services["mlflow"]["command"][:2] == ["mlflow", "server"]
    # the password reaches processes through the environment, never their command line
    for name, service in services.items():
        assert password not in json.dumps(service.get("command", "")), name

    for name in ("mlflow", "worker"):
        env = _env(services[name])
        assert env["MLFLOW_S3_ENDPOINT_URL"] == env["AWS_ENDPOINT_URL"] == "http://minio:9000"
        assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == (s3_user, s3_secret)
    worker_env = _env(services["worker"])
    assert worker_env["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    assert worker_env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    build = services["worker"]["build"]
    assert Path(build["context"]).resolve() == REPO
    assert build["dockerfile"] == "infra/worker.Dockerfile"
    # one image for the server, MLflow and the worker: the project's pinned versions
    images = {services[n]["image"] for n in ("prefect-server", "mlflow", "worker")}
    assert images == {"modalops-worker:0.1.0"}


def test_the_image_carries_the_drivers_the_urls_name():
    """postgresql+asyncpg (Prefect) and postgresql+psycopg (MLflow) need their drivers in the
    image, which installs the project's runtime dependencies."""
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[\[<>=~! ]", d, maxsplit=1)[0].lower() for d in deps}
    assert "psycopg" in names, deps
    import asyncpg  # noqa: F401  (a dependency of prefect's server)
    import psycopg

    assert psycopg.pq.__impl__ in ("binary", "c"), "psycopg needs libpq: use psycopg[binary]"
    # a plain postgresql:// URI (docs, infra/README.md) loads its driver: psycopg2 under
    # SQLAlchemy 2.0, which Prefect 3.8.8's scheduler needs (2.1 breaks it: issue 20)
    import sqlalchemy

    assert sqlalchemy.__version__.startswith("2.0."), sqlalchemy.__version__
    engine = sqlalchemy.create_engine("postgresql://nobody@127.0.0.1:1/none")  # no connection
    assert engine.dialect.driver in ("psycopg2", "psycopg"), engine.dialect.driver


# ---- the worker image ----------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def test_dockerfile_pins_torch_first_uses_constraints_and_a_non_root_user():
    steps = dockerfile_instructions()
    assert steps[0] == ("FROM", "python:3.11-slim")
    runs = [(i, rest) for i, (op, rest) in enumerate(steps) if op == "RUN"]
    args = dict(rest.split("=", 1) for op, rest in steps if op == "ARG" and "=" in rest)
    torch_steps = [i for i, r in runs if "torch==2.13.0" in r and "pip install" in r]
    project_steps = [i for i, r in runs if re.search(r"pip install .*(-e )?\.(\s|$)", r)]
    assert torch_steps and project_steps, runs
    assert torch_steps[0] < project_steps[0], "torch must be installed before the project"
    torch_run = dict(runs)[torch_steps[0]]
    assert "-c constraints.txt" in torch_run and "--index-url" in torch_run
    assert args.get("TORCH_INDEX_URL") == "https://download.pytorch.org/whl/cpu"
    assert "-c constraints.txt" in dict(runs)[project_steps[0]]
    assert "torch==2.13.0" in (REPO / "constraints.txt").read_text().split()

    users = [rest for op, rest in steps if op == "USER"]
    assert users, "no USER: the image would run as root"
    user = users[-1].split(":")[0]
    assert user.isdigit() and int(user) != 0, f"USER {users[-1]}: must be a numeric non-root uid"
    # the k8s job template runs the image as that uid
    pod = json.loads(JOB_TEMPLATE.read_text())["job_configuration"]["job_manifest"]["spec"]
    assert pod["template"]["spec"]["securityContext"]["runAsUser"] == int(user)

    cmd = json.loads(next(rest for op, rest in steps if op == "CMD"))
    assert cmd[:3] == ["prefect", "worker", "start"]
    assert cmd[cmd.index("--pool") + 1] == DEFAULT_WORK_POOL
    assert cmd[cmd.index("--type") + 1] == "process"


def test_dockerfile_copies_only_what_exists_and_dockerignore_drops_local_state():
    ignore = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for must in (".venv", ".modalops", ".git", "**/__pycache__", ".pytest_cache", "infra/.env"):
        assert must in ignore, f".dockerignore lacks {must}"
    for op, rest in dockerfile_instructions():
        if op == "COPY":
            *sources, _ = shlex.split(rest)
            for src in sources:
                assert (REPO / src).exists(), f"worker.Dockerfile copies {src}, which is absent"
                assert src not in ignore, f"worker.Dockerfile copies {src}, which is ignored"


# ---- Kubernetes ----------------------------------------------------------------------------------


def k8s_documents() -> list[tuple[str, dict]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                docs.append((path.name, doc))
    return docs


def test_every_k8s_document_validates_against_the_kubernetes_schema():
    docs = k8s_documents()
    kinds = sorted(doc["kind"] for _, doc in docs)
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "Namespace",
        "Role",
        "RoleBinding",
        "ServiceAccount",
        "ServiceAccount",
    ]
    for name, doc in docs:
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as err:
            pytest.fail(f"infra/k8s/{name}: {doc['kind']} {doc['metadata'].get('name')}: {err}")
        assert doc["metadata"]["name"], name
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "modalops", f"{name}: {doc['kind']}"
        # credentials are referenced, never stored in the repository
        assert doc["kind"] != "Secret", f"{name} holds a Secret: create it with kubectl instead"


def test_the_schema_validation_can_fail():
    """Guards the check above: a misspelt field and a wrong type are both refused."""
    _, deployment = next(d for d in k8s_documents() if d[1]["kind"] == "Deployment")
    typo = copy.deepcopy(deployment)
    typo["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    wrong = copy.deepcopy(deployment)
    wrong["spec"]["replicas"] = "one"
    for bad in (typo, wrong):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def _by_kind(kind: str) -> list[dict]:
    return [doc for _, doc in k8s_documents() if doc["kind"] == kind]


def _assert_pod_is_locked_down(pod: dict, where: str) -> None:
    assert pod["securityContext"]["runAsNonRoot"] is True, where
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
    for c in pod["containers"]:
        sc = c.get("securityContext", {})
        assert sc.get("privileged", False) is False, f"{where}: {c['name']} is privileged"
        assert sc.get("allowPrivilegeEscalation") is False, f"{where}: {c['name']}"
        assert sc.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: {c['name']}"
        for key in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c.get("resources", {}).get(key, {})), (
                f"{where}: {c['name']} has no {key}"
            )
        for env in c.get("env", []):
            if re.search(r"PASSWORD|SECRET|TOKEN|KEY|AUTH", env["name"]):
                assert "value" not in env, f"{where}: {env['name']} is inlined"


def test_the_worker_deployment_runs_the_kubernetes_worker_with_least_privilege():
    (deployment,) = _by_kind("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    _assert_pod_is_locked_down(pod, "worker Deployment")
    (worker,) = pod["containers"]
    argv = worker.get("command", []) + worker["args"]
    assert argv[:3] == ["prefect", "worker", "start"], argv
    assert argv[argv.index("--pool") + 1] == K8S_POOL
    assert argv[argv.index("--type") + 1] == "kubernetes"
    assert worker["image"].endswith("-kubernetes"), "the worker needs prefect-kubernetes"
    assert worker["image"].split(":")[1].startswith("3.8.8-"), "server and worker: one version"

    # PREFECT_API_URL from the ConfigMap, which also holds MLflow's address
    (config,) = _by_kind("ConfigMap")
    assert {"PREFECT_API_URL", "MLFLOW_TRACKING_URI"} <= set(config["data"])
    api = next(e for e in worker["env"] if e["name"] == "PREFECT_API_URL")
    assert api["valueFrom"]["configMapKeyRef"]["name"] == config["metadata"]["name"]

    # the RBAC: the Deployment's account may create Jobs and watch their Pods
    sa = pod["serviceAccountName"]
    assert sa in {d["metadata"]["name"] for d in _by_kind("ServiceAccount")}
    (binding,) = _by_kind("RoleBinding")
    assert {"kind": "ServiceAccount", "name": sa, "namespace": "modalops"} in binding["subjects"]
    (role,) = _by_kind("Role")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }

    def allowed(group: str, resource: str, verb: str) -> bool:
        return any(
            group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"]
            for r in role["rules"]
        )

    for verb in ("create", "get", "list", "watch", "delete"):
        assert allowed("batch", "jobs", verb), f"the worker may not {verb} Jobs"
    for verb in ("get", "list", "watch"):
        assert allowed("", "pods", verb), f"the worker may not {verb} Pods"
    assert allowed("", "pods/log", "get")
    assert not any("*" in r["verbs"] or "*" in r["resources"] for r in role["rules"])

    # the job template reaches the worker as a ConfigMap the kustomization generates
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    (generated,) = kustomization["configMapGenerator"]
    assert generated["files"] == [JOB_TEMPLATE.name]
    assert kustomization["generatorOptions"]["disableNameSuffixHash"] is True
    volume = next(v for v in pod["volumes"] if "configMap" in v)
    assert volume["configMap"]["name"] == generated["name"]
    mount = next(m for m in worker["volumeMounts"] if m["name"] == volume["name"])
    assert (
        argv[argv.index("--base-job-template") + 1] == f"{mount['mountPath']}/{JOB_TEMPLATE.name}"
    )


# The fields of prefect-kubernetes 0.8.0's KubernetesWorkerJobConfiguration (its default
# template's job_configuration, read with `prefect work-pool get-default-base-job-template
# --type kubernetes` on Prefect 3.8.8).
K8S_JOB_CONFIGURATION = {
    "command", "env", "labels", "name", "annotations", "namespace", "job_manifest",
    "cluster_config", "job_watch_timeout_seconds", "pod_watch_timeout_seconds", "stream_output",
}  # fmt: skip


def _render_job(template: dict) -> dict:
    """The Job a worker would submit: Prefect's own templating with the variables' defaults and
    a flow run's values, then the two conversions KubernetesWorkerJobConfiguration makes."""
    from prefect.utilities.templating import apply_values
    from prefect.workers.base import BaseJobConfiguration

    values = BaseJobConfiguration._get_base_config_defaults(template["variables"]["properties"])
    values |= {
        "name": "modalops-training-pipeline",
        "command": "python -m prefect.engine",
        "env": {"PREFECT__FLOW_RUN_ID": str(uuid.uuid4())},
        "labels": {"prefect.io/flow-run-id": str(uuid.uuid4())},
        "annotations": {},
    }
    config = apply_values(copy.deepcopy(template["job_configuration"]), values)
    job = config["job_manifest"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": k, "value": v} for k, v in container["env"].items()]
    container["args"] = shlex.split(container["args"])
    return job


def test_the_job_template_is_what_the_kubernetes_work_pool_takes():
    from jsonschema import Draft202012Validator
    from prefect.server.schemas.actions import WorkPoolCreate

    try:
        template = json.loads(JOB_TEMPLATE.read_text())
    except json.JSONDecodeError as err:
        pytest.fail(f"{JOB_TEMPLATE.relative_to(REPO)} is not JSON: {err}")
    assert set(template) == {"job_configuration", "variables"}
    assert set(template["job_configuration"]) == K8S_JOB_CONFIGURATION
    # the server's own check: every {{ placeholder }} is a declared variable
    WorkPoolCreate(name=K8S_POOL, type="kubernetes", base_job_template=template)
    schema = template["variables"]
    Draft202012Validator.check_schema(schema)
    defaults = {k: v["default"] for k, v in schema["properties"].items() if "default" in v}
    errors = list(Draft202012Validator(schema).iter_errors(defaults))
    assert not errors, [e.message for e in errors]

    job = _render_job(template)
    pod = job["spec"]["template"]["spec"]
    # what the worker's own manifest check requires (prefect_kubernetes.worker's base manifest)
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    assert {"labels", "annotations"} <= set(job["metadata"])
    assert (pod["parallelism"], pod["completions"], pod["restartPolicy"]) == (1, 1, "Never")
    assert pod["containers"][0]["name"] == "prefect-job"
    # ...which puts parallelism/completions in the pod spec, where the API server drops them
    # (a warning); the rest must be a valid Job.
    strict = copy.deepcopy(job)
    for key in ("parallelism", "completions"):
        strict["spec"]["template"]["spec"].pop(key)
    try:
        kubernetes_validate.validate(strict, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as err:
        pytest.fail(f"{JOB_TEMPLATE.name}: the rendered Job is invalid: {err}")

    _assert_pod_is_locked_down(pod, "flow-run Job")
    container = pod["containers"][0]
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "4Gi"}
    # defaults agree with the other manifests and the image
    assert job["metadata"]["namespace"] == "modalops"
    service_accounts = {d["metadata"]["name"] for d in _by_kind("ServiceAccount")}
    assert pod["serviceAccountName"] in service_accounts - {"prefect-worker"}
    assert pod["automountServiceAccountToken"] is False
    assert container["image"] == "modalops-worker:0.1.0"
    assert container["args"] == ["python", "-m", "prefect.engine"]
    # credentials by reference: the ConfigMap for addresses, Secrets for keys
    (config,) = _by_kind("ConfigMap")
    refs = container["envFrom"]
    assert {"configMapRef": {"name": config["metadata"]["name"]}} in refs
    assert {"secretRef": {"name": "modalops-s3"}} in refs
    assert "AWS_SECRET_ACCESS_KEY" not in json.dumps(template)


def test_the_recipe_without_containers_binds_loopback():
    """The plain-process recipe (infra/README.md) and its env file start servers on loopback:
    a Prefect server has no users, and a worker runs whatever a deployment says."""
    env = dict(
        line.split("=", 1)
        for line in (INFRA / "prefect-server.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert env["PREFECT_SERVER_API_HOST"] == "127.0.0.1"
    readme = (INFRA / "README.md").read_text()
    recipe = readme.split("## Without containers", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"`([^`]*(?:prefect server start|mlflow server)[^`]*)`", recipe)
    assert len(commands) == 2, commands
    for cmd in commands:
        assert re.search(r"--host 127\.0\.0\.1\b", cmd), cmd
    assert "0.0.0.0" not in recipe.replace("0.0.0.0 *inside* their network", "")


@pytest.mark.skipif(_initdb() is None, reason="no PostgreSQL server binaries (make system-deps)")
def test_the_tests_private_postgres_starts_answers_on_loopback_and_stops():
    """The `postgres` fixture's fallback where no server answers on 127.0.0.1:5432 (this
    machine has one, so the fallback is exercised here, not by the fixture)."""
    import psutil

    from modalops.services import listening_addresses

    with private_postgres() as dsn:
        assert _postgres_answers(dsn)
        port = int(dsn.rsplit(":", 1)[1])
        [pid] = {
            c.pid
            for c in psutil.net_connections("inet")
            if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN
        }
        assert {ip for ip, p in listening_addresses(pid) if p == port} == {"127.0.0.1"}
    assert not _postgres_answers(dsn)
