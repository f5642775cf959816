#!/usr/bin/env bash
# Installs the Sentry-protocol trackers the tests send crashes to: scripts/install-bugsink.sh DIR
#
# DIR (target/bugsink-venv) becomes a venv holding Bugsink and sentry-relay (versions in
# scripts/bugsink-requirements.txt), then DIR/template holds a Bugsink configuration and a
# migrated SQLite database with a user, a team and a project, which each test run copies (a
# migration takes seconds; a copy does not). The interpreter is $BUGSINK_PYTHON when set, else
# pyenv's newest 3.12 or 3.11, else /usr/bin/python3 (Bugsink needs 3.10+). DIR/.stamp is
# written last: an interrupted install is made again from scratch next time. When it fails,
# the tests that need it are skipped with a line saying so.
set -euo pipefail

dir=${1:?usage: $0 DIR}
here=$(cd "$(dirname "$0")" && pwd)
requirements=$here/bugsink-requirements.txt

python=${BUGSINK_PYTHON:-$("$here/pick-python.sh" '3.1[12]*')}

echo "install-bugsink: creating $dir with $python ($("$python" --version 2>&1))"
rm -rf "$dir"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
"$python" -m venv "$dir"
"$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
"$dir/bin/python" -c 'import sentry_relay.processing'

# The template: configuration, migrated databases, and one project whose DSN is kept in
# template/dsn (its host and port are rewritten by each test run).
template=$dir/template
mkdir -p "$template"
cd "$template"
"$dir/bin/bugsink-create-conf" --template=local --port=8000 --host=127.0.0.1 >/dev/null
cat >>bugsink_conf.py <<'CONF'

# crashcatch's tests: databases and the ingest store in the run's folder (BUGSINK_TEST_DIR,
# the current folder by default), and every event checked against Sentry's event schema.
import os as _os
_base = _os.environ.get("BUGSINK_TEST_DIR", _os.getcwd())
DATABASES["default"]["NAME"] = _os.path.join(_base, "db.sqlite3")
DATABASES["snappea"]["NAME"] = _os.path.join(_base, "snappea.sqlite3")
BUGSINK["INGEST_STORE_BASE_DIR"] = _os.path.join(_base, "ingestion")
BUGSINK["VALIDATE_ON_DIGEST"] = "strict"
BUGSINK["BASE_URL"] = _os.environ.get("BUGSINK_BASE_URL", BUGSINK["BASE_URL"])
CONF
"$dir/bin/bugsink-manage" migrate --no-input >/dev/null
"$dir/bin/bugsink-manage" migrate --database=snappea --no-input >/dev/null
"$dir/bin/bugsink-manage" shell -c '
from django.contrib.auth import get_user_model
from teams.models import Team, TeamMembership, TeamRole
from projects.models import Project, ProjectMembership, ProjectRole
user = get_user_model().objects.create_superuser("crashcatch", "crashcatch@example.org", "crashcatch")
team = Team.objects.create(name="crashcatch")
TeamMembership.objects.create(team=team, user=user, role=TeamRole.ADMIN, accepted=True)
project = Project.objects.create(team=team, name="crashcatch")
ProjectMembership.objects.create(project=project, user=user, role=ProjectRole.ADMIN, accepted=True)
open("dsn", "w").write(project.dsn)
'
test -s dsn
touch "$dir/.stamp"
echo "install-bugsink: ready, template project DSN in $template/dsn"
