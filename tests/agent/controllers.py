"""Workload manifests, and the controllers' part played against the fake kube-apiserver.

The fake stores objects but runs no controllers: a test creates a Deployment's ReplicaSet and
pods (labels from the template, ``ownerReferences`` to the owner) and sets their statuses, as
the ReplicaSet controller and the kubelet would.
"""

from __future__ import annotations

import copy
from typing import Any

from brokkr.agent.manifests import ObjectRef
from tests.fakes.kube_apiserver import FakeKubeApiServer

Obj = dict[str, Any]


def ref(manifest: Obj) -> ObjectRef:
    """What the agent records for ``manifest`` once applied."""
    meta = manifest["metadata"]
    return ObjectRef(
        api_version=manifest["apiVersion"],
        kind=manifest["kind"],
        namespace=meta.get("namespace", ""),
        name=meta["name"],
    )


def template(labels: dict[str, str], image: str = "nginx:1") -> Obj:
    return {
        "metadata": {"labels": dict(labels)},
        "spec": {"containers": [{"name": "main", "image": image}]},
    }


def workload(
    kind: str,
    name: str,
    *,
    namespace: str = "default",
    labels: dict[str, str] | None = None,
    selector: Obj | None = None,
    replicas: int = 1,
) -> Obj:
    """A Deployment, StatefulSet, DaemonSet or ReplicaSet manifest selecting ``labels``."""
    labels = labels or {"app": name}
    spec: Obj = {
        "selector": selector or {"matchLabels": dict(labels)},
        "template": template(labels),
    }
    if kind != "DaemonSet":
        spec["replicas"] = replicas
    if kind == "StatefulSet":
        spec["serviceName"] = name
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": spec,
    }


def job(name: str, *, namespace: str = "default") -> Obj:
    pod = template({"app": name})
    pod["spec"]["restartPolicy"] = "Never"
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"template": pod},
    }


def cronjob(name: str, *, namespace: str = "default") -> Obj:
    spec = job(name)["spec"]
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": spec}},
    }


def bare_pod(name: str, *, namespace: str = "default", labels: dict[str, str] | None = None) -> Obj:
    pod = template(labels or {"app": name})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, **pod["metadata"]},
        "spec": pod["spec"],
    }


def owner_reference(owner: Obj) -> Obj:
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


# --- statuses (what the kubelet and controllers write) -------------------------------------


def container(state: Obj, *, ready: bool = False, restarts: int = 0, **more: Obj) -> Obj:
    """One ``containerStatuses`` entry (the API requires image and imageID)."""
    return {
        "name": "main",
        "image": "nginx:1",
        "imageID": "",
        "ready": ready,
        "restartCount": restarts,
        "state": state,
        **more,
    }


def ready_pod() -> Obj:
    return {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [container({"running": {}}, ready=True)],
    }


def waiting_pod(reason: str, message: str = "", *, restarts: int = 0) -> Obj:
    state = {"waiting": {"reason": reason, "message": message or f"container is {reason}"}}
    return {
        "phase": "Pending" if reason in ("ImagePullBackOff", "ErrImagePull") else "Running",
        "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
        "containerStatuses": [container(state, restarts=restarts)],
    }


def succeeded_pod() -> Obj:
    return {
        "phase": "Succeeded",
        "conditions": [{"type": "Ready", "status": "False", "reason": "PodCompleted"}],
        "containerStatuses": [container({"terminated": {"reason": "Completed", "exitCode": 0}})],
    }


def available(replicas: int, generation: int = 1) -> Obj:
    """A Deployment's (or ReplicaSet's) status once its rollout completed."""
    return {
        "observedGeneration": generation,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
    }


def job_complete(succeeded: int = 1) -> Obj:
    return {
        "succeeded": succeeded,
        "conditions": [{"type": "Complete", "status": "True"}],
    }


class Controllers:
    """The fake's missing controllers: create children and pods the way they would."""

    def __init__(self, fake: FakeKubeApiServer) -> None:
        self.fake = fake

    def live(self, manifest: Obj) -> Obj:
        meta = manifest["metadata"]
        found = self.fake.get(
            manifest["kind"], meta["name"], meta.get("namespace"), manifest["apiVersion"]
        )
        assert found is not None, f"{manifest['kind']} {meta['name']} does not exist"
        return found

    def child(self, owner: Obj, kind: str, name: str) -> Obj:
        """A ReplicaSet of a Deployment, or a Job of a CronJob, owned by it."""
        owner = self.live(owner)
        spec = owner["spec"]
        if kind == "ReplicaSet":
            body = workload("ReplicaSet", name, namespace=owner["metadata"]["namespace"])
            body["spec"] = {
                "replicas": spec.get("replicas", 1),
                "selector": copy.deepcopy(spec["selector"]),
                "template": copy.deepcopy(spec["template"]),
            }
        else:
            body = job(name, namespace=owner["metadata"]["namespace"])
            body["spec"] = copy.deepcopy(spec["jobTemplate"]["spec"])
        # As the controllers do: the child carries its template's labels.
        body["metadata"]["labels"] = dict(body["spec"]["template"]["metadata"].get("labels") or {})
        body["metadata"]["ownerReferences"] = [owner_reference(owner)]
        return self.fake.create(body)

    def pods(self, owner: Obj, count: int, status: Obj | None = None) -> list[Obj]:
        """``count`` pods of ``owner`` (its template's labels, owned by it), with ``status``."""
        owner = self.live(owner)
        namespace = owner["metadata"]["namespace"]
        created = []
        for index in range(count):
            name = f"{owner['metadata']['name']}-{index}"
            body = bare_pod(name, namespace=namespace)
            body["metadata"]["labels"] = dict(owner["spec"]["template"]["metadata"]["labels"])
            body["metadata"]["ownerReferences"] = [owner_reference(owner)]
            pod = self.fake.create(body)
            if status is not None:
                pod = self.fake.set_status("Pod", name, status, namespace)
            created.append(pod)
        return created

    def set_pods(self, pods: list[Obj], status: Obj) -> None:
        for pod in pods:
            meta = pod["metadata"]
            self.fake.set_status("Pod", meta["name"], status, meta["namespace"])
