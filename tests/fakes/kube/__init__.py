"""The fake kube-apiserver, split by concern.

``resources`` knows the API's resource types, ``errors`` builds Status bodies, ``selectors``
parses label and field selectors, ``fields`` does managedFields and server-side apply,
``store`` holds the cluster's objects, ``discovery`` renders discovery documents, ``faults``
holds fault injection rules, ``app`` is the ASGI application and ``server`` serves it with
uvicorn. Tests import :mod:`tests.fakes.kube_apiserver`.
"""
