"""`make package STAGE=dev`: the generated merge template, the stage's policy file, and `chalice package`.

    python -m infra.deploy.package --stage dev [--out out]

writes
    out/merge-template-<stage>.json   generated from chalicelib/resources.py and app.py
    .chalice/policy-<stage>.json      the stage's IAM policy file, if the stage has autogen_policy false
    out/<stage>/sam.json              chalice's SAM template with the merge applied
    out/<stage>/deployment.zip        the functions' code and dependencies (Linux wheels)

`out/` is git-ignored. chalice needs a region to name service principals;
without AWS_DEFAULT_REGION it packages for us-east-1's partition (aws), which
is right for every commercial region.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from infra.deploy.template import ROOT, app_graph, merge_template, policy_file_text, visibility_warnings, write_json


def chalice_executable() -> str:
    beside = Path(sys.executable).with_name("chalice")
    return str(beside) if beside.exists() else "chalice"


def write_policy_files(stage: str) -> list[Path]:
    graph = app_graph(stage)
    written = []
    for filename in graph.policy_files:
        path = Path(filename)
        path.write_text(policy_file_text(graph))
        written.append(path)
    return written


def package(stage: str, out_dir: Path, write_policies: bool = True) -> Path:
    """Generate the merge template and run `chalice package`; return the packaged sam.json."""
    graph = app_graph(stage)
    for warning in visibility_warnings(graph):
        print(f"package: {warning}", file=sys.stderr)
    merge_path = out_dir / f"merge-template-{stage}.json"
    write_json(merge_path, merge_template(graph))
    if write_policies:
        write_policy_files(stage)
    target = out_dir / stage
    shutil.rmtree(target, ignore_errors=True)
    env = {**os.environ}
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    subprocess.run(
        [chalice_executable(), "package", "--stage", stage, "--merge-template", str(merge_path.resolve()),
         str(target.resolve())],
        cwd=ROOT, env=env, check=True,
    )
    return target / "sam.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--out", type=Path, default=ROOT / "out")
    args = parser.parse_args()
    sam = package(args.stage, args.out)
    print(f"packaged: {sam} (deploy it as docs/DEPLOY.md says)")


if __name__ == "__main__":
    main()
