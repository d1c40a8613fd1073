"""`make audit`: pip-audit against the locked requirements (requirements-serve.lock, what the
container ships, and requirements.lock, everything the .venv should hold), then against the
installed .venv (what is actually there). Prints the findings and writes reliability/results/audit.json.

    python -m reliability.audit [--service pypi|osv]

Exit status: 0 when every package was checked and none has a known vulnerability; 1 when one
has; 3 when the vulnerability service could not be reached for some packages (a package that
could not be checked is reported, never taken as clean).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from common.files import atomic_write_text
from reliability.server import ROOT


def pip_audit(args: list[str], service: str) -> dict[str, Any]:
    """One pip-audit run; returns its JSON report (with the exit code and stderr tail)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "audit.json"
        command = [sys.executable, "-m", "pip_audit", *args, "--vulnerability-service", service, "--progress-spinner", "off",
                   "--format", "json", "--output", str(out)]  # fmt: skip
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1800)
        report = json.loads(out.read_text()) if out.exists() else {"dependencies": []}
    report["exit_code"] = result.returncode
    report["stderr_tail"] = result.stderr.strip().splitlines()[-5:]
    return report


def findings(report: dict[str, Any]) -> dict[str, Any]:
    deps = report.get("dependencies", [])
    vulnerable = [
        {
            "name": d["name"],
            "version": d.get("version"),
            "vulns": [
                {"id": v["id"], "fix_versions": v.get("fix_versions", []), "aliases": v.get("aliases", [])}
                for v in d["vulns"]
            ],
        }
        for d in deps
        if d.get("vulns")
    ]
    skipped = [{"name": d["name"], "reason": d["skip_reason"]} for d in deps if d.get("skip_reason")]
    return {
        "packages": len(deps),
        "checked": len(deps) - len(skipped),
        "vulnerable": vulnerable,
        "not_checked": skipped,
        "exit_code": report["exit_code"],
        "stderr_tail": report["stderr_tail"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability.audit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--service", default="pypi", choices=["pypi", "osv"], help="vulnerability database")
    parser.add_argument("--out", type=Path, default=ROOT / "reliability" / "results" / "audit.json")
    args = parser.parse_args(argv)
    pinned = ["-r", "requirements-serve.lock", "-r", "requirements.lock", "--require-hashes", "--disable-pip"]
    result = {
        "service": args.service,
        "pinned_requirements": findings(pip_audit(pinned, args.service)),
        "installed_environment": findings(pip_audit([], args.service)),
    }
    for label, found in (
        ("pinned requirements", result["pinned_requirements"]),
        ("installed .venv", result["installed_environment"]),
    ):
        print(f"audit ({label}, {args.service}): {found['packages']} packages, {found['checked']} checked, "
              f"{len(found['vulnerable'])} with known vulnerabilities, {len(found['not_checked'])} not checked")  # fmt: skip
        for dep in found["vulnerable"]:
            for vuln in dep["vulns"]:
                fix = ", ".join(vuln["fix_versions"]) or "none yet"
                print(f"  {dep['name']}=={dep['version']}: {vuln['id']} (fixed in {fix})")
        if not found["packages"]:
            print("  pip-audit failed:", *found["stderr_tail"][-2:])
        if found["not_checked"]:
            names = ", ".join(d["name"] for d in found["not_checked"][:12])
            print(f"  not checked ({found['not_checked'][0]['reason'].split(':')[0]}): {names}"
                  + (" ..." if len(found["not_checked"]) > 12 else ""))  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    parts = (result["pinned_requirements"], result["installed_environment"])
    if any(p["vulnerable"] for p in parts):
        return 1
    if any(p["not_checked"] or not p["packages"] for p in parts):
        print("audit: INCOMPLETE (some packages could not be checked: the vulnerability service was not reachable)")
        return 3
    print("audit: no known vulnerabilities")
    return 0


if __name__ == "__main__":
    sys.exit(main())
