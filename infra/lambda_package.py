"""`make package` step after `chalice package`: compile bytecode into the Lambda zip, then check
that every runtime requirement made it in (chalice exits 0 when it leaves one out), and report
the size. Exit 1 with one line per problem. `--check` only checks (the CDK asset, which must not
change after synthesis).

    .venv/bin/python infra/lambda_package.py [--check] build/package/deployment.zip requirements.txt
"""

import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lifeguard_infra.package import add_bytecode, read_requirements, verify

#: Lambda's limit for a zip package, unzipped (function code and layers together)
UNZIPPED_LIMIT = 250 * 1024 * 1024


def main(argv: list[str]) -> int:
    check_only = argv[:1] == ["--check"]
    args = argv[1:] if check_only else argv
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    zip_path, requirements = Path(args[0]), Path(args[1])
    if not check_only:
        add_bytecode(zip_path)
    report = verify(zip_path, read_requirements(requirements))
    with zipfile.ZipFile(zip_path) as archive:
        unzipped = sum(info.file_size for info in archive.infolist())
    print(
        f"{zip_path}: {report.size_bytes / 1e6:.1f} MB zipped, {unzipped / 1e6:.1f} MB unzipped "
        f"(limit {UNZIPPED_LIMIT / 1e6:.0f} MB), {report.files} files, {report.pyc_files} .pyc, "
        f"{len(report.distributions)} distributions"
    )
    if report.pyc_files == 0:
        report.problems.append("no bytecode: every cold start would compile every module")
    if unzipped > UNZIPPED_LIMIT:
        report.problems.append(f"unzipped size {unzipped} exceeds Lambda's {UNZIPPED_LIMIT}")
    for problem in report.problems:
        print(f"package problem: {problem}", file=sys.stderr)
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
