"""Soak: many concurrent TLS keep-alive connections held for a while, every
request answered without error, the server's memory bounded.  Runs when
SMI_SOAK_SECONDS is set (run.sh sets it); connection count from
SMI_SOAK_CONNECTIONS (default 1000).  Loopback only; every loop is bounded by
the deadline."""
import http.client
import os
import resource
import ssl
import threading
import time
import unittest

from smi import CERTS, ENV, PREFIX

SECONDS = float(ENV.get("SMI_SOAK_SECONDS", "0"))
CONNECTIONS = int(ENV.get("SMI_SOAK_CONNECTIONS", "1000"))
PATH = f"{PREFIX}/namespaces/emojivoto/deployments/web"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@unittest.skipUnless(SECONDS > 0, "set SMI_SOAK_SECONDS to run the soak")
class Soak(unittest.TestCase):
    def test_thousand_tls_connections(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, CONNECTIONS * 2 + 256), hard))
        threading.stack_size(512 * 1024)
        host, port = ENV["SMI_URL"].split("//")[1].rsplit(":", 1)
        ctx = ssl.create_default_context(cafile=os.path.join(CERTS, "serving-ca.crt"))
        ctx.load_cert_chain(os.path.join(CERTS, "front-proxy-client.crt"),
                            os.path.join(CERTS, "front-proxy-client.key"))
        all_open = threading.Barrier(CONNECTIONS + 1, timeout=120)
        lock = threading.Lock()
        stats = {"ok": 0, "errors": 0, "first_error": None}
        deadline = [0.0]

        def client():
            ok = errors = 0
            first = None
            try:
                conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=60)
                conn.connect()
            except Exception as e:  # noqa: BLE001 - every failure counts
                errors, first = 1, repr(e)
                conn = None
            try:
                all_open.wait()
            except threading.BrokenBarrierError:
                pass
            while conn and time.monotonic() < deadline[0]:
                try:
                    conn.request("GET", PATH)
                    r = conn.getresponse()
                    r.read()
                    if r.status == 200:
                        ok += 1
                    else:
                        errors += 1
                        first = first or f"HTTP {r.status}"
                except Exception as e:  # noqa: BLE001
                    errors += 1
                    first = first or repr(e)
                    break
                time.sleep(0.05)  # ~20 requests/s per connection at most
            if conn:
                conn.close()
            with lock:
                stats["ok"] += ok
                stats["errors"] += errors
                stats["first_error"] = stats["first_error"] or first

        pid = int(ENV["SMI_PID"])
        rss_idle = rss_kib(pid)
        threads = [threading.Thread(target=client, daemon=True) for _ in range(CONNECTIONS)]
        for t in threads:
            t.start()
        all_open.wait()  # every connection is established and held
        deadline[0] = time.monotonic() + SECONDS
        peak = rss_idle
        while time.monotonic() < deadline[0]:
            peak = max(peak, rss_kib(pid))
            time.sleep(1)
        for t in threads:
            t.join(timeout=120)
        rss_end = rss_kib(pid)
        print(f"\nsoak: {CONNECTIONS} TLS connections for {SECONDS:.0f} s: {stats['ok']} requests ok, "
              f"{stats['errors']} errors; server RSS idle {rss_idle // 1024} MiB, peak {peak // 1024} MiB, "
              f"end {rss_end // 1024} MiB")
        self.assertEqual(stats["errors"], 0, stats["first_error"])
        self.assertGreater(stats["ok"], CONNECTIONS)
        # Bounded: a thousand connection threads with their buffers, not
        # growth per request (the sanitizer build roughly doubles it).
        limit_mib = int(ENV.get("SMI_SOAK_RSS_LIMIT_MIB", "1024"))
        self.assertLess(peak // 1024, limit_mib)
        self.assertLess(rss_end, peak * 1.1 + 1024)


if __name__ == "__main__":
    unittest.main()
