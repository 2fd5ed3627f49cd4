#!/bin/sh
# check_rules.sh - the monitoring files as Prometheus and Grafana take them
# (make check, in the build directory's monitoring/):
#   - `promtool check rules` and `promtool test rules` on the rules built
#     from uzswap.rules.yml.in and their unit tests;
#   - every alert has a test case that expects it to fire;
#   - every runbook_url is the same page with an anchor that a heading of
#     docs/operations.md gives (GitHub's and GitLab's anchors: lower case,
#     punctuation dropped, spaces as hyphens);
#   - uzswap-dashboard.json is JSON that Grafana imports anywhere: its
#     data source is the input ${DS_PROMETHEUS}, which every panel, query
#     and variable uses (the built-in annotations keep Grafana's); panel
#     ids are unique; every query parses as PromQL
#     (promtool check rules on a rule per query).
# SKIP (77) without promtool or jq (scripts/setup installs prometheus and
# jq). That every metric named here is one uzswapd exports is checked
# against a real daemon by tests/integration/check_metrics.
set -u
srcdir=${srcdir:-.}
rules=uzswap.rules.yml
tests=uzswap.rules.test.yml
dashboard=$srcdir/uzswap-dashboard.json
guide=$srcdir/../docs/operations.md

for tool in promtool jq; do
	if ! command -v $tool >/dev/null 2>&1; then
		echo "SKIP: no $tool in \$PATH"
		exit 77
	fi
done
for f in $rules $tests $dashboard $guide; do
	[ -f "$f" ] || { echo "check_rules: $f is missing"; exit 99; }
done

status=0
fail() {
	echo "FAIL: $*"
	status=1
}
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT

promtool check rules $rules || fail "promtool check rules $rules"
promtool test rules $tests || fail "promtool test rules $tests"

# Every alert is expected to fire somewhere in the tests.
sed -n 's/^ *- alert: *//p' $rules | sort -u >"$tmp/alerts"
awk '/alertname:/ { name = $NF } /exp_labels:/ { print name }' $tests |
	sort -u >"$tmp/tested"
for alert in $(comm -23 "$tmp/alerts" "$tmp/tested"); do
	fail "alert $alert has no test case where it fires"
done
[ -s "$tmp/alerts" ] || fail "no alert in $rules"

# Runbook links: one page, each anchor a heading of operations.md.
sed -n 's/^ *runbook_url: *"\(.*\)"$/\1/p' $rules >"$tmp/urls"
[ "$(wc -l <"$tmp/urls")" -eq "$(wc -l <"$tmp/alerts")" ] ||
	fail "not every alert has a runbook_url"
[ "$(sed 's/#.*//' "$tmp/urls" | sort -u | wc -l)" -eq 1 ] ||
	fail "the runbook links point at different pages: $(cat "$tmp/urls")"
awk '/^```/ { code = !code; next } !code && /^#+ / { sub(/^#+ +/, ""); print }' \
	"$guide" | tr 'A-Z' 'a-z' | sed 's/[^a-z0-9 _-]//g; s/ /-/g' \
	>"$tmp/anchors"
for anchor in $(sed -n 's/.*#//p' "$tmp/urls"); do
	grep -qx -- "$anchor" "$tmp/anchors" ||
		fail "runbook anchor #$anchor: no such heading in operations.md"
done

# The dashboard.
if jq empty "$dashboard"; then
	jq -e '[.__inputs[] | select(.name == "DS_PROMETHEUS" and
		.pluginId == "prometheus")] | length == 1' "$dashboard" \
		>/dev/null || fail "the dashboard has no DS_PROMETHEUS input"
	jq -r '[.panels, .templating] | .. | objects |
		select(has("datasource")) |
		.datasource | if type == "object" then .uid else . end' \
		"$dashboard" | grep -v -x -F '${DS_PROMETHEUS}' >"$tmp/ds"
	[ -s "$tmp/ds" ] && fail "data sources other than \${DS_PROMETHEUS}:" \
		"$(sort -u "$tmp/ds" | tr '\n' ' ')"
	[ "$(jq '[.panels[].id] | length' "$dashboard")" -eq \
	  "$(jq '[.panels[].id] | unique | length' "$dashboard")" ] ||
		fail "the dashboard's panel ids are not unique"
	# each query as a recording rule, Grafana's interval as 5m
	{
		echo "groups:"
		echo "  - name: dashboard"
		echo "    rules:"
		jq -r '.panels[].targets[]?.expr' "$dashboard" |
			sed 's/\$__rate_interval/5m/g' |
			awk '{ gsub(/'\''/, "'\'''\''"); printf "      - record: dashboard:query_%d\n        expr: '\''%s'\''\n", NR, $0 }'
	} >"$tmp/dashboard.rules.yml"
	promtool check rules "$tmp/dashboard.rules.yml" >"$tmp/promtool.out" 2>&1 ||
		{ cat "$tmp/promtool.out"; fail "a dashboard query is not PromQL"; }
else
	fail "$dashboard is not JSON"
fi
exit $status
