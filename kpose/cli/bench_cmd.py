"""``kpose bench NAME``: the benchmarks in :mod:`kpose.benchmarks`, one module each."""

from __future__ import annotations

import argparse
import importlib

# name -> (module, one-line help)
BENCHMARKS = {
    "codec": ("kpose.benchmarks.codec", "heatmap codec: oracle AP per stride/decoder, decoder speed"),
    "data": ("kpose.benchmarks.data", "tf.data top-down pipeline throughput, crops/s per core"),
    "demo": ("kpose.benchmarks.demo", "demo pipeline end to end on a video: fps and ms per stage, per detector mode"),
    "latency": ("kpose.benchmarks.latency", "exported model latency per flavour, 1/2 threads, decoder share, ops outside XNNPACK"),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="run a benchmark and print its table")
    names = parser.add_subparsers(dest="benchmark", metavar="NAME", required=True)
    for name, (module_name, help_text) in BENCHMARKS.items():
        sub = names.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--json", action="store_true", help="print the results as JSON")
        module = importlib.import_module(module_name)
        module.add_arguments(sub)
        sub.set_defaults(func=module.run)
