"""Importer of Kubernetes manifests: workloads and Services become CIs, wired by selectors and env vars.

What becomes a CI:

=============================  ===============  ==========================================
manifest kind                  CI type          CI id
=============================  ===============  ==========================================
Deployment, StatefulSet,       ``workload``     ``k8s/<namespace>/<kind lower-case>/<name>``
DaemonSet
Service                        ``k8s_service``  ``k8s/<namespace>/service/<name>``
=============================  ===============  ==========================================

The namespace is ``default`` when ``metadata.namespace`` is absent. Every CI
has ``source="kubernetes"`` and ``source_id="<Kind>/<namespace>/<name>"``.
The environment comes from the label ``environment`` or ``env``, the owner
from ``owner`` or ``team``, and the tags are ``kind=<Kind>`` and
``<key>=<value>`` for the labels ``app`` and ``app.kubernetes.io/*``. A workload reads these labels from its
own metadata and then from its pod template. ``attributes`` hold the kind,
namespace, labels and ports, plus replicas and images for a workload and the
service type and selector for a Service. Other kinds (ServiceAccount,
ConfigMap, Ingress, ...) are counted in ``ImportBatch.skipped``.
``kind: List`` documents are unpacked.

Relationships, all hard ``DEPENDS_ON``:

* Service -> workload, for each workload in the Service's namespace whose pod
  template labels contain every pair of the Service's ``spec.selector``. A
  Service that selects several workloads puts them in one redundancy group
  ``backends`` with ``min_available`` 1, because the Service keeps serving
  while one backend runs. A Service without a selector, or one that selects
  nothing, gets a warning.
* workload -> Service, for each Service that a ``value`` of an env var in a
  container or init container names (``valueFrom`` cannot be resolved from
  manifests). A value names a Service when it is ``host``, ``host:port`` or
  ``scheme://[user@]host[:port][/path]`` and the host is ``<service>`` (in
  the workload's namespace), ``<service>.<namespace>`` (when that namespace
  occurs in the import), ``<service>.<namespace>.svc[.<cluster domain>]``
  or ``<pod>.<service>.<namespace>.svc[...]``, and that Service is in the
  import. A Service that selects the workload itself is not a dependency.

An env var whose name looks like an address (it contains ``ADDR`` or ends
with ``_HOST``, ``_URL``, ``_URI``, ``_ENDPOINT``, ``_SERVICE`` or
``_SERVER``) and whose value names a Service that the import does not define
is an *unresolved reference*. It becomes a warning and an entry of the
workload's ``attributes["unresolved_references"]``, and no CI or
relationship. IP addresses, ``localhost`` and other host names such as
``api.example.com`` name no Service and are ignored.

``read`` resolves references within one file. ``read_many`` resolves them
across all files of one import, as needed when each file holds one service.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from importers.source import SourceError, load_yaml_documents
from service.errors import RecordProblem
from service.records import ImportBatch, Origin, ci_from_record, relationship_from_record

logger = logging.getLogger(__name__)

SOURCE = "kubernetes"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
SERVICE_KIND = "Service"
WORKLOAD_TYPE = "workload"
SERVICE_TYPE = "k8s_service"
DEFAULT_NAMESPACE = "default"
BACKENDS_GROUP = "backends"

ENVIRONMENT_LABELS = ("environment", "env")
OWNER_LABELS = ("owner", "team")
ADDRESS_NAME_SUFFIXES = ("_HOST", "_URL", "_URI", "_ENDPOINT", "_SERVICE", "_SERVER")

# Words that fit the host grammar but are settings, not host names.
_NOT_HOSTS = frozenset({"localhost", "true", "false", "yes", "no", "on", "off", "none", "null"})
_DNS_LABEL = r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*")
_HOST_PORT = re.compile(rf"(?P<host>{_HOST.pattern})\.?(?::(?P<port>[0-9]{{1,5}}))?")
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*://")
# Service names are DNS-1035 labels: they start with a letter.
_SERVICE_NAME = re.compile(r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class Address:
    """The host and port of an env var value that may name a Service."""

    host: str
    port: int | None


def parse_address(value: str) -> Address | None:
    """Parse ``host``, ``host:port`` or a URL into an ``Address``, or return None for anything else.

    IP addresses, ``localhost``, numbers and words such as ``true`` are not
    addresses of a Service, so they return None too. The host is lower-cased
    because DNS names are case-insensitive.
    """
    # NOTE: a comma-separated list such as "kafka-0.kafka:9092,kafka-1.kafka:9092"
    # is not split, so it returns None and records neither a dependency nor a warning.
    text = value.strip().lower()
    if _SCHEME.match(text):
        try:
            parts = urlsplit(text)
            host, port = parts.hostname, parts.port
        except ValueError:
            return None
        if not host:
            return None
        host = host.rstrip(".")
    else:
        match = _HOST_PORT.fullmatch(text)
        if match is None:
            return None
        host = match["host"]
        port = int(match["port"]) if match["port"] else None

    if port is not None and not 0 < port < 65536:
        return None
    if host in _NOT_HOSTS or _is_ip_address(host) or not _HOST.fullmatch(host):
        return None
    if not any(character.isalpha() for character in host):
        return None
    return Address(host, port)


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def service_named(host: str, namespace: str, namespaces: Collection[str]) -> tuple[str, str] | None:
    """Return the (namespace, name) of the Service that a host names, or None.

    Args:
        host: lower-case host from ``parse_address``.
        namespace: namespace of the workload, used when the host is a bare name.
        namespaces: namespaces that occur in the import; ``<name>.<namespace>``
            is read as a Service only when the namespace is one of them,
            because ``example.com`` has the same shape.
    """
    labels = host.split(".")
    if len(labels) == 1:
        name = labels[0]
    elif len(labels) == 2 and labels[1] in namespaces:
        name, namespace = labels
    elif len(labels) >= 3 and labels[2] == "svc":
        name, namespace = labels[0], labels[1]
    elif len(labels) >= 4 and labels[3] == "svc":
        # <pod>.<service>.<namespace>.svc... names one pod behind a headless Service.
        name, namespace = labels[1], labels[2]
    else:
        return None
    if not _SERVICE_NAME.fullmatch(name):
        return None
    return namespace, name


def looks_like_address_name(env_name: str) -> bool:
    """Tell whether an env var name suggests that its value is a network address."""
    upper = env_name.upper()
    return "ADDR" in upper or upper.endswith(ADDRESS_NAME_SUFFIXES)


@dataclass(frozen=True)
class _Manifest:
    """One object of a supported kind, with the document it came from."""

    kind: str
    namespace: str
    name: str
    body: Mapping[str, Any]
    origin: Origin

    @property
    def ci_id(self) -> str:
        return f"k8s/{self.namespace}/{self.kind.lower()}/{self.name}"

    @property
    def source_id(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


@dataclass
class _File:
    """Manifests, problems and skipped kinds of one file, before references are resolved."""

    source: str
    manifests: list[_Manifest] = field(default_factory=list)
    problems: list[RecordProblem] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    namespaces: set[str] = field(default_factory=set)


def read(path: Path) -> ImportBatch:
    """Read one manifest file. Env var values resolve against the Services of this file only.

    Raises:
        SourceError: the file is not UTF-8 or not valid YAML.
    """
    return _build([_parse_file(path)])


def read_many(paths: Sequence[Path]) -> ImportBatch:
    """Read the manifest files of one import. Env var values resolve against the Services of all of them.

    A file that cannot be read or parsed becomes a problem of the batch and
    the other files are still read, as ``importers.read_files`` does.
    """
    files = []
    problems = []
    for path in paths:
        try:
            files.append(_parse_file(path))
        except SourceError as exc:
            problems.append(exc.problem)
    batch = _build(files)
    batch.problems[:0] = problems
    return batch


# Parsing: documents to manifests


def _parse_file(path: Path) -> _File:
    file = _File(str(path))
    for number, document in enumerate(load_yaml_documents(path), start=1):
        if document is not None:
            _collect(document, f"document #{number}", file)
    logger.debug(
        "%s: %d workloads and Services, %d skipped, %d problems",
        path,
        len(file.manifests),
        sum(file.skipped.values()),
        len(file.problems),
    )
    return file


def _collect(document: Any, position: str, file: _File) -> None:
    """Add one document (or each item of a List) to the file's manifests, skipped kinds or problems."""
    if not isinstance(document, Mapping):
        file.problems.append(
            RecordProblem(
                file.source,
                position,
                "(document)",
                f"a manifest is a mapping with apiVersion, kind and metadata, not {_describe_type(document)}; "
                "fix the indentation or remove the document",
            )
        )
        return
    kind = document.get("kind")
    if not isinstance(kind, str) or not kind:
        file.problems.append(
            RecordProblem(
                file.source,
                position,
                "kind",
                "missing or empty 'kind'; add the object's kind, such as Deployment or Service",
            )
        )
        return

    if kind == "List" or (kind.endswith("List") and "items" in document):
        _collect_items(document, kind, f"{position} ({kind})", file)
        return

    metadata = document.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, Mapping):
        file.problems.append(
            RecordProblem(
                file.source,
                f"{position} ({kind})",
                "metadata",
                f"expected a mapping, found {_describe_type(metadata)}; give metadata a name and labels",
            )
        )
        return
    namespace = metadata.get("namespace") or DEFAULT_NAMESPACE
    name = metadata.get("name")
    if not isinstance(namespace, str):
        file.problems.append(
            RecordProblem(
                file.source,
                f"{position} ({kind})",
                "metadata.namespace",
                f"expected a string, found {_describe_type(namespace)}; write the namespace name",
            )
        )
        return
    file.namespaces.add(namespace)
    if kind == "Namespace" and isinstance(name, str):
        file.namespaces.add(name)

    if kind not in (*WORKLOAD_KINDS, SERVICE_KIND):
        file.skipped[kind] = file.skipped.get(kind, 0) + 1
        return
    if not isinstance(name, str) or not name.strip():
        file.problems.append(
            RecordProblem(
                file.source,
                f"{position} ({kind})",
                "metadata.name",
                f"missing metadata.name; give the {kind} a name, because the CI id is built from it",
            )
        )
        return
    origin = Origin(file.source, f"{position} ({kind} '{namespace}/{name}')")
    file.manifests.append(_Manifest(kind, namespace, name, document, origin))


def _collect_items(document: Mapping[str, Any], kind: str, position: str, file: _File) -> None:
    items = document.get("items")
    if items is None:
        return
    if not isinstance(items, list):
        file.problems.append(
            RecordProblem(
                file.source,
                position,
                "items",
                f"expected a list of objects, found {_describe_type(items)}; put the objects under 'items'",
            )
        )
        return
    # Items of a typed list such as DeploymentList may leave out their kind.
    item_kind = kind.removesuffix("List") if kind != "List" else None
    for index, item in enumerate(items):
        if item_kind and isinstance(item, Mapping) and "kind" not in item:
            item = {**item, "kind": item_kind}
        _collect(item, f"{position}, items[{index}]", file)


def _describe_type(value: Any) -> str:
    if value is None:
        return "an empty value"
    if isinstance(value, Mapping):
        return "a mapping"
    names = {list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return names.get(type(value), f"a {type(value).__name__}")


# Reading the fields of one manifest


class _Fields:
    """Reads nested fields of one manifest and records a problem for each field of the wrong type."""

    def __init__(self, origin: Origin, problems: list[RecordProblem]) -> None:
        self.origin = origin
        self.problems = problems

    def invalid(self, path: str, message: str) -> None:
        self.problems.append(RecordProblem(self.origin.source, self.origin.record, path, message))

    def mapping(self, parent: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
        value = parent.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.invalid(path, f"expected a mapping, found {_describe_type(value)}; fix the indentation")
            return {}
        return value

    def sequence(self, parent: Mapping[str, Any], key: str, path: str) -> list[Any]:
        value = parent.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.invalid(path, f"expected a list, found {_describe_type(value)}; write one '- ' entry per item")
            return []
        return value

    def string_map(self, parent: Mapping[str, Any], key: str, path: str) -> dict[str, str]:
        """Read labels or a selector: a mapping of strings to strings, as Kubernetes requires."""
        result = {}
        for name, value in self.mapping(parent, key, path).items():
            if not isinstance(value, str):
                self.invalid(
                    f"{path}.{name}",
                    f"expected a string, found {_describe_type(value)} {value!r}; quote the value",
                )
                continue
            result[str(name)] = value
        return result

    def entries(self, parent: Mapping[str, Any], key: str, path: str) -> list[tuple[str, Mapping[str, Any]]]:
        """Read a list of mappings, returning each with its field path."""
        result = []
        for index, item in enumerate(self.sequence(parent, key, path)):
            item_path = f"{path}[{index}]"
            if not isinstance(item, Mapping):
                self.invalid(item_path, f"expected a mapping, found {_describe_type(item)}; fix the indentation")
                continue
            result.append((item_path, item))
        return result


@dataclass(frozen=True)
class _EnvVar:
    name: str
    value: str


@dataclass
class _Workload:
    manifest: _Manifest
    labels: dict[str, str]
    pod_labels: dict[str, str]
    attributes: dict[str, Any]
    env: list[_EnvVar]


@dataclass
class _Service:
    manifest: _Manifest
    labels: dict[str, str]
    selector: dict[str, str]
    attributes: dict[str, Any]


def _read_workload(manifest: _Manifest, problems: list[RecordProblem]) -> _Workload | None:
    fields = _Fields(manifest.origin, problems)
    before = len(problems)
    labels = fields.string_map(manifest.body.get("metadata") or {}, "labels", "metadata.labels")
    spec = fields.mapping(manifest.body, "spec", "spec")
    template = fields.mapping(spec, "template", "spec.template")
    pod_labels = fields.string_map(
        fields.mapping(template, "metadata", "spec.template.metadata"), "labels", "spec.template.metadata.labels"
    )
    pod_spec = fields.mapping(template, "spec", "spec.template.spec")

    images: list[str] = []
    ports: list[dict[str, Any]] = []
    env: list[_EnvVar] = []
    for list_name in ("initContainers", "containers"):
        for path, container in fields.entries(pod_spec, list_name, f"spec.template.spec.{list_name}"):
            container_name = container.get("name")
            image = container.get("image")
            if isinstance(image, str) and image not in images:
                images.append(image)
            for port_path, port in fields.entries(container, "ports", f"{path}.ports"):
                ports.append(_container_port(container_name, port, port_path, fields))
            for env_path, variable in fields.entries(container, "env", f"{path}.env"):
                parsed = _env_var(variable, env_path, fields)
                if parsed is not None:
                    env.append(parsed)

    replicas = spec.get("replicas")
    if replicas is None:
        replicas = 1
    if manifest.kind != "DaemonSet" and not (isinstance(replicas, int) and not isinstance(replicas, bool)):
        fields.invalid(
            "spec.replicas", f"expected a whole number, found {replicas!r}; write it like 'replicas: 3'"
        )
    if len(problems) > before:
        return None

    attributes: dict[str, Any] = {"kind": manifest.kind, "namespace": manifest.namespace}
    # A DaemonSet runs one pod per eligible node, so it has no replica count.
    if manifest.kind != "DaemonSet":
        attributes["replicas"] = replicas
    attributes.update(images=images, ports=[p for p in ports if p], labels=labels)
    if pod_labels != labels:
        attributes["pod_labels"] = pod_labels
    return _Workload(manifest, labels, pod_labels, attributes, env)


def _container_port(
    container_name: Any, port: Mapping[str, Any], path: str, fields: _Fields
) -> dict[str, Any]:
    number = port.get("containerPort")
    if not isinstance(number, int) or isinstance(number, bool):
        fields.invalid(
            f"{path}.containerPort",
            f"expected a port number, found {number!r}; write it like 'containerPort: 8080'",
        )
        return {}
    entry: dict[str, Any] = {"port": number, "protocol": port.get("protocol") or "TCP"}
    if isinstance(container_name, str):
        entry["container"] = container_name
    if isinstance(port.get("name"), str):
        entry["name"] = port["name"]
    return entry


def _env_var(variable: Mapping[str, Any], path: str, fields: _Fields) -> _EnvVar | None:
    name = variable.get("name")
    if not isinstance(name, str) or not name:
        fields.invalid(f"{path}.name", "missing env var name; add 'name:' to the entry")
        return None
    if "value" not in variable or variable["value"] is None:
        return None
    value = variable["value"]
    if not isinstance(value, str):
        fields.invalid(
            f"{path}.value",
            f"env var {name} has {_describe_type(value)} {value!r}; quote the value, "
            "because Kubernetes accepts only strings",
        )
        return None
    return _EnvVar(name, value)


def _read_service(manifest: _Manifest, problems: list[RecordProblem]) -> _Service | None:
    fields = _Fields(manifest.origin, problems)
    before = len(problems)
    labels = fields.string_map(manifest.body.get("metadata") or {}, "labels", "metadata.labels")
    spec = fields.mapping(manifest.body, "spec", "spec")
    selector = fields.string_map(spec, "selector", "spec.selector")
    ports = []
    for path, port in fields.entries(spec, "ports", "spec.ports"):
        number = port.get("port")
        if not isinstance(number, int) or isinstance(number, bool):
            fields.invalid(f"{path}.port", f"expected a port number, found {number!r}; write it like 'port: 80'")
            continue
        entry: dict[str, Any] = {"port": number, "protocol": port.get("protocol") or "TCP"}
        for key, attribute in (("name", "name"), ("targetPort", "target_port"), ("nodePort", "node_port")):
            if isinstance(port.get(key), (str, int)):
                entry[attribute] = port[key]
        ports.append(entry)
    if len(problems) > before:
        return None

    attributes: dict[str, Any] = {
        "kind": manifest.kind,
        "namespace": manifest.namespace,
        "service_type": spec.get("type") or "ClusterIP",
        "ports": ports,
        "selector": selector,
        "labels": labels,
    }
    if spec.get("clusterIP") == "None":
        attributes["headless"] = True
    if isinstance(spec.get("externalName"), str):
        attributes["external_name"] = spec["externalName"]
    return _Service(manifest, labels, selector, attributes)


# Building: CIs, relationships and warnings over all files


def _build(files: list[_File]) -> ImportBatch:
    batch = ImportBatch()
    namespaces: set[str] = set()
    objects: list[_Workload | _Service] = []
    for file in files:
        batch.problems.extend(file.problems)
        for kind, count in file.skipped.items():
            batch.skipped[kind] = batch.skipped.get(kind, 0) + count
        namespaces |= file.namespaces
        for manifest in file.manifests:
            if manifest.kind == SERVICE_KIND:
                service = _read_service(manifest, batch.problems)
                if service is not None:
                    objects.append(service)
            else:
                workload = _read_workload(manifest, batch.problems)
                if workload is not None:
                    objects.append(workload)

    services = {(o.manifest.namespace, o.manifest.name): o for o in objects if isinstance(o, _Service)}
    workloads_by_namespace: dict[str, list[_Workload]] = defaultdict(list)
    for item in objects:
        if isinstance(item, _Workload):
            workloads_by_namespace[item.manifest.namespace].append(item)
    backends = {
        service.manifest.ci_id: _selected_workloads(service, workloads_by_namespace)
        for service in services.values()
    }

    for item in objects:
        if isinstance(item, _Service):
            _add_service(item, backends[item.manifest.ci_id], batch)
        else:
            _add_workload(item, services, backends, frozenset(namespaces), batch)
    return batch


def _selected_workloads(service: _Service, workloads_by_namespace: dict[str, list[_Workload]]) -> list[_Workload]:
    if not service.selector:
        return []
    return [
        workload
        for workload in workloads_by_namespace.get(service.manifest.namespace, [])
        if all(workload.pod_labels.get(key) == value for key, value in service.selector.items())
    ]


def _ci_record(
    manifest: _Manifest, ci_type: str, labels: dict[str, str], attributes: dict[str, Any]
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": manifest.ci_id,
        "name": manifest.name,
        "type": ci_type,
        "source": SOURCE,
        "source_id": manifest.source_id,
        "attributes": attributes,
    }
    environment = next((labels[key] for key in ENVIRONMENT_LABELS if labels.get(key)), None)
    owner = next((labels[key] for key in OWNER_LABELS if labels.get(key)), None)
    if environment:
        record["environment"] = environment
    if owner:
        record["owner"] = owner
    tags = sorted(
        f"{key}={value}" for key, value in labels.items() if key == "app" or key.startswith("app.kubernetes.io/")
    )
    # The kind as a tag lets a selector pick one kind of workload, such as a
    # runbook about StatefulSets.
    record["tags"] = sorted([f"kind={manifest.kind}", *tags])
    return record


def _add_ci(record: dict[str, Any], origin: Origin, batch: ImportBatch) -> None:
    ci, problems = ci_from_record(record, origin)
    if ci is None:
        batch.problems.extend(problems)
    else:
        batch.cis.append((ci, origin))


def _add_relationship(record: dict[str, Any], origin: Origin, batch: ImportBatch) -> None:
    relationship, problems = relationship_from_record(record, origin)
    if relationship is None:
        batch.problems.extend(problems)
    else:
        batch.relationships.append((relationship, origin))


def _add_service(service: _Service, selected: list[_Workload], batch: ImportBatch) -> None:
    manifest = service.manifest
    _add_ci(_ci_record(manifest, SERVICE_TYPE, service.labels, service.attributes), manifest.origin, batch)

    external_name = service.attributes.get("external_name")
    if external_name:
        batch.warnings.append(
            f"{manifest.origin.source}: {manifest.origin.record}: the Service is an alias of the "
            f"external name {external_name!r}, which is outside the manifests; no dependency recorded"
        )
        return
    if not service.selector:
        batch.warnings.append(
            f"{manifest.origin.source}: {manifest.origin.record}: the Service has no selector, "
            "so its endpoints are managed outside the manifests; no dependency recorded"
        )
        return
    if not selected:
        pairs = ", ".join(f"{key}={value}" for key, value in service.selector.items())
        batch.warnings.append(
            f"{manifest.origin.source}: {manifest.origin.record}: the Service selects {pairs}, "
            f"but no Deployment, StatefulSet or DaemonSet in namespace '{manifest.namespace}' has "
            "those pod labels; no dependency recorded"
        )
        return
    for workload in selected:
        record: dict[str, Any] = {
            "source": manifest.ci_id,
            "target": workload.manifest.ci_id,
            "type": "DEPENDS_ON",
            "attributes": {"via": "selector"},
        }
        if len(selected) > 1:
            record["redundancy"] = {"group": BACKENDS_GROUP, "min_available": 1}
        _add_relationship(record, manifest.origin, batch)


def _add_workload(
    workload: _Workload,
    services: dict[tuple[str, str], _Service],
    backends: dict[str, list[_Workload]],
    namespaces: frozenset[str],
    batch: ImportBatch,
) -> None:
    manifest = workload.manifest
    env_names_by_target: dict[str, list[str]] = {}
    unresolved: list[dict[str, str]] = []
    for variable in workload.env:
        address = parse_address(variable.value)
        if address is None:
            continue
        named = service_named(address.host, manifest.namespace, namespaces)
        if named is None:
            continue
        service = services.get(named)
        if service is not None:
            if any(backend is workload for backend in backends[service.manifest.ci_id]):
                logger.debug(
                    "%s: env var %s names the workload's own Service; not a dependency",
                    manifest.origin.record,
                    variable.name,
                )
                continue
            names = env_names_by_target.setdefault(service.manifest.ci_id, [])
            if variable.name not in names:
                names.append(variable.name)
        elif looks_like_address_name(variable.name):
            entry = {"env": variable.name, "value": variable.value, "host": address.host}
            if entry in unresolved:
                continue
            unresolved.append(entry)
            namespace, name = named
            where = f" in namespace '{namespace}'" if namespace != manifest.namespace else ""
            batch.warnings.append(
                f"{manifest.origin.source}: {manifest.origin.record}: env var {variable.name}="
                f"{variable.value!r} names Service '{name}'{where}, "
                "which the manifests do not define; no dependency recorded"
            )

    attributes = dict(workload.attributes)
    if unresolved:
        attributes["unresolved_references"] = unresolved
    labels = {**workload.pod_labels, **workload.labels}
    _add_ci(_ci_record(manifest, WORKLOAD_TYPE, labels, attributes), manifest.origin, batch)
    for target, env_names in env_names_by_target.items():
        record = {
            "source": manifest.ci_id,
            "target": target,
            "type": "DEPENDS_ON",
            "attributes": {"via": "env", "env": sorted(env_names)},
        }
        _add_relationship(record, manifest.origin, batch)
