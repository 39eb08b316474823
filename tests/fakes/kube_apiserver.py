"""A fake kube-apiserver for tests, served over real HTTP on 127.0.0.1.

Usage::

    async with FakeKubeApiServer() as kube:
        kube.write_kubeconfig(tmp_path / "kubeconfig")
        ...  # point the code under test at it; inspect with kube.objects("ConfigMap", "default")

or ``with FakeKubeApiServer() as kube:`` from sync code; or, by hand,
``python -m tests.fakes.kube_apiserver --kubeconfig /tmp/kubeconfig``.

What it imitates (the implementation lives in :mod:`tests.fakes.kube`):

- Discovery: ``/api``, ``/api/v1``, ``/apis``, ``/apis/<group>``, ``/apis/<group>/<version>`` in
  the real legacy shapes (APIVersions, APIGroupList, APIGroup, APIResourceList), ``/version``.
  A CRD's group version appears once the CRD is Established (on the next request after its
  creation, or after ``crd_establish_delay`` seconds) and disappears when it is deleted.
- Built-in resources: namespaces, configmaps, secrets, services, serviceaccounts, pods (+
  ``pods/log`` with ``container``, ``tailLines``, ``limitBytes``, ``previous``, ``timestamps``
  (the kubelet's fixed-width RFC 3339 nanosecond prefix), ``sinceTime`` / ``sinceSeconds``, and
  ``follow``: a stream of the lines written later, until the pod is deleted, the container
  restarts or the client leaves; seed with ``set_pod_log``, ``append_pod_log`` (lines stamped
  as written) and ``restart_container``), events (``record_event``),
  nodes, PVCs, PVs, resourcequotas, limitranges; apps/v1 deployments, statefulsets,
  daemonsets, replicasets; batch/v1 jobs, cronjobs; networking.k8s.io/v1
  ingresses, ingressclasses, networkpolicies; policy/v1 PDBs; RBAC roles, rolebindings,
  clusterroles, clusterrolebindings; scheduling priorityclasses; storage storageclasses;
  apiextensions.k8s.io/v1 customresourcedefinitions; plus the custom resources of CRDs.
- Verbs: GET, LIST (one namespace, all namespaces, labelSelector with ``=``, ``==``, ``!=``,
  ``in``, ``notin``, exists, ``!``exists; fieldSelector on metadata.name/namespace and
  per-kind fields such as an Event's involvedObject.*; limit and continue), WATCH
  (``?watch=true``, polling-based streaming), POST (generateName), PUT (resourceVersion
  conflicts), PATCH (apply, merge, strategic (approximate), json patch), DELETE
  (propagationPolicy, preconditions, finalizers), deletecollection, status subresources,
  ``dryRun=All``.
- Server-side apply with managedFields per manager (Apply / Update entries, FieldsV1),
  conflicts (409 with the real message and causes), ``force=true``, removal of fields a manager
  stopped sending, identity checks against the URL. Lists are atomic.
- Global resourceVersion, uid, creationTimestamp, generation (for types that have one),
  defaults (namespace label and phase, Secret type and stringData, Service clusterIP, replicas),
  validation (names, labels, annotations, some immutable fields, CRD shape).
- Built-in kinds checked against the real Kubernetes schemas (``kube/schemas.py``): unknown
  fields and wrong types as server-side apply and ``fieldValidation`` treat them, required
  fields; workloads' selectors must match their templates; Jobs get a generated selector.
- Garbage collection by ownerReferences uid (Background, Foreground, Orphan); a deleted
  namespace is ``Terminating`` (no new content: 403) until the next request after
  ``namespace_termination_delay`` seconds, then its content and it are gone; new namespaces
  get ``kube-root-ca.crt`` and the ``default`` ServiceAccount, like a real cluster's
  controllers.
- Status error bodies (NotFound, AlreadyExists, Conflict, Invalid, BadRequest,
  MethodNotAllowed, UnsupportedMediaType, Unauthorized, ...), ``Content-Type: application/json``.
- Bearer-token authentication (401 without it), a request log, fault injection.

Not imitated: TLS, authorization (the token is cluster-admin), admission webhooks, CRD schemas
(custom resources are neither validated nor pruned), most semantic validation of built-ins,
protobuf, aggregated discovery (v2), ``/openapi``, associative lists in server-side apply
(every list is atomic), exact strategic merge patch, watch bookmarks and 410 Gone, graceful pod
termination, controllers (nothing creates ReplicaSets or Pods; set statuses with
``set_status``), the scale subresource, CR version conversion (versions share storage; only
apiVersion changes), PUT-to-create.
Namespace termination removes the content at once, finalizers on that content notwithstanding.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from tests.fakes.kube.app import RecordedRequest
from tests.fakes.kube.errors import ApiError
from tests.fakes.kube.faults import Fault
from tests.fakes.kube.server import FakeKubeApiServer

__all__ = ["ApiError", "FakeKubeApiServer", "Fault", "RecordedRequest"]


def main(argv: list[str] | None = None) -> None:
    """Serve the fake until interrupted, for trying a client by hand."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", type=Path, required=True, help="where to write it")
    parser.add_argument("--crd-establish-delay", type=float, default=0.0)
    args = parser.parse_args(argv)
    done = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: done.set())
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with FakeKubeApiServer(crd_establish_delay=args.crd_establish_delay) as kube:
        kube.write_kubeconfig(args.kubeconfig)
        sys.stdout.write(f"fake kube-apiserver at {kube.url}; kubeconfig {args.kubeconfig}\n")
        sys.stdout.flush()
        done.wait()


if __name__ == "__main__":
    main()
