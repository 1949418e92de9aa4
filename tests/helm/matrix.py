"""The adapter and certificate modes every test runs over."""
from chartlib import OTHER_CA

# (label, --set values)
ADAPTERS = [
    ("linkerd", ["adapter=linkerd"]),
    ("istio", ["adapter=istio"]),
    ("istio-mixer", ["adapter=istio", "adapterOptions.mode=mixer"]),
]

# (label, --set values, --set-file values)
CERT_MODES = [
    ("helm", [], []),
    ("cert-manager", ["tls.mode=cert-manager"], []),
    ("cert-manager-issuer", ["tls.mode=cert-manager", "tls.certManager.issuerRef.name=corp-ca",
                             "tls.certManager.issuerRef.kind=ClusterIssuer"], []),
    ("existingSecret", ["tls.mode=existingSecret", "tls.existingSecret.name=my-tls"],
     ["tls.existingSecret.caBundle=" + OTHER_CA]),
]


def combos():
    for a_label, a_sets in ADAPTERS:
        for c_label, c_sets, c_files in CERT_MODES:
            yield f"{a_label}/{c_label}", a_sets + c_sets, c_files
