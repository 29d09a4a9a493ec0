#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# test_metrics_parse: the metrics text, as a file and over HTTP, read by
# prometheus_client's parser (Debian's python3-prometheus-client): every
# family, type, help, label value and count comes back as written.
# Usage: test_metrics_parse.py PATH/TO/metrics_emit
import math
import os
import subprocess
import sys
import tempfile
import unittest
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

EMIT = sys.argv.pop(1) if len(sys.argv) > 1 else os.environ.get("METRICS_EMIT")
VALUES = ["plain", "back\\slash", 'say "hi"', "two\nlines", "déjà vu \U0001D11E",
          "bad\ufffdbyte", ""]


def parse(text):
    """Every family by name; a ValueError for what the parser lets through but
    this writer never writes: a sample without TYPE, a timestamp, a family twice."""
    fams = {}
    for f in text_string_to_metric_families(text):
        if f.type == "unknown":
            raise ValueError(f"{f.name}: no TYPE line")
        if f.name in fams:
            raise ValueError(f"{f.name}: two families")
        for s in f.samples:
            if s.timestamp is not None:
                raise ValueError(f"{s.name}: a timestamp")
        fams[f.name] = f
    return fams


class MetricsText(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="test_metrics_parse.")
        cls.path = os.path.join(cls.tmp.name, "hpcops.prom")
        cls.proc = subprocess.Popen([EMIT, cls.path], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True)
        cls.port = int(cls.proc.stdout.readline())
        cls.logline = cls.proc.stdout.readline().rstrip("\n")
        with open(cls.path, encoding="utf-8") as f:
            cls.text = f.read()

    @classmethod
    def tearDownClass(cls):
        cls.proc.stdin.close()
        assert cls.proc.wait(timeout=10) == 0
        cls.tmp.cleanup()

    def test_parser_is_strict_enough(self):
        # the parser must be able to say no, or its yes means nothing. It is
        # lenient (an unknown escape, a label twice, a timestamp pass), so
        # parse() adds checks and test_metrics.c has a strict checker.
        for bad in ['a{b="c} 1\n', "a{b=c} 1\n", "a-b 1\n", "a x\n", 'a{b="1"}} 1\n',
                    "a 1\n", "# TYPE a counter\na 1 123\n"]:
            with self.assertRaises(ValueError, msg=bad):
                parse(bad)

    def test_families(self):
        fams = parse(self.text)
        # counters lose their _total in the parser's family name
        self.assertEqual(sorted(fams), sorted([
            "hpcops_fs_read_bytes", "hpcops_fs_errors", "hpcops_fs_uploads_open",
            "hpcops_fs_budget_bytes", "hpcops_fs_ttfb_seconds", "hpcops_fs_part_seconds",
            "hpcops_fs_idle_seconds"]))
        self.assertEqual(fams["hpcops_fs_read_bytes"].type, "counter")
        self.assertEqual(fams["hpcops_fs_read_bytes"].documentation,
                         "Bytes read through the mount")
        self.assertEqual(fams["hpcops_fs_read_bytes"].samples[0].value, 1048576)
        self.assertEqual(fams["hpcops_fs_errors"].documentation,
                         'Errors by key\\and "kind"\nline 2')
        self.assertEqual(fams["hpcops_fs_uploads_open"].type, "gauge")
        self.assertEqual(fams["hpcops_fs_uploads_open"].samples[0].value, -3)
        self.assertEqual(fams["hpcops_fs_budget_bytes"].documentation, "")

    def test_label_values_round_trip(self):
        got = {int(s.labels["n"]): (s.labels["key"], s.value)
               for s in parse(self.text)["hpcops_fs_errors"].samples}
        self.assertEqual(got, {i: (v, i + 1) for i, v in enumerate(VALUES)})

    def test_histograms(self):
        fams = parse(self.text)
        for name, count, total in [("hpcops_fs_ttfb_seconds", 10, 0.135),
                                   ("hpcops_fs_part_seconds", 2, 3.5),
                                   ("hpcops_fs_idle_seconds", 0, 0)]:
            f = fams[name]
            self.assertEqual(f.type, "histogram")
            buckets = [s for s in f.samples if s.name == name + "_bucket"]
            les = [float(s.labels["le"]) for s in buckets]
            self.assertEqual(les, sorted(les))
            self.assertEqual(les[-1], math.inf)
            counts = [s.value for s in buckets]
            self.assertEqual(counts, sorted(counts), "cumulative")
            by = {s.name: s.value for s in f.samples if s.name != name + "_bucket"}
            self.assertEqual(by[name + "_count"], count)
            self.assertEqual(counts[-1], count)
            self.assertAlmostEqual(by[name + "_sum"], total, places=12)
        part = {s.labels["le"]: s.value for s in fams["hpcops_fs_part_seconds"].samples
                if "le" in s.labels}
        self.assertEqual(part, {"0.5": 1, "1": 1, "2.5": 1, "+Inf": 2})
        ttfb = {float(s.labels["le"]): s.value for s in fams["hpcops_fs_ttfb_seconds"].samples
                if "le" in s.labels}
        self.assertEqual(ttfb[0.001], 1)   # the 0 observation
        self.assertEqual(ttfb[0.005], 2)   # 0, 0.003
        self.assertEqual(ttfb[0.02], 7)    # ... 0.018
        self.assertEqual(ttfb[0.05], 10)
        self.assertEqual(min(ttfb), 0.001)
        self.assertEqual(max(k for k in ttfb if k != math.inf), 30)

    def test_http_serves_the_same_text(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as r:
            self.assertEqual(r.status, 200)
            self.assertEqual(r.headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8")
            body = r.read().decode("utf-8")
        self.assertEqual(body, self.text)
        parse(body)
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"http://127.0.0.1:{self.port}/nope", timeout=10)
        self.assertEqual(e.exception.code, 404)

    def test_log_line(self):
        items = self.logline.split(" ")
        self.assertEqual(items[0], "read_bytes_total=1048576")
        self.assertIn("uploads_open=-3", items)
        self.assertNotIn("budget_bytes=0", self.logline)  # zero: left out
        self.assertIn('ttfb_seconds_count{op="GetObject"}=10', items)
        self.assertIn("part_seconds_sum=3.5", items)
        self.assertNotIn("idle_seconds", self.logline)
        self.assertNotIn("hpcops_fs_", self.logline)


if __name__ == "__main__":
    unittest.main(verbosity=2)
