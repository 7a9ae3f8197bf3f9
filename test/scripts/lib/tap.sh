# Sourced by every scripted test: TAP output. Defines n and fails (tests run, tests failed) and
#   ok STATUS NAME        passes when STATUS (an exit status) is 0;
#   is GOT EXPECTED NAME  passes when the two strings are equal, else prints both;
#   like GOT REGEX NAME   passes when GOT matches the bash regular expression;
#   skip REASON NAME      a test not run, and why (TAP's "# skip": neither passed nor failed).
# The script prints its plan ("1..N") itself and ends with [ "$fails" -eq 0 ].
n=0
fails=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fails=$((fails + 1)); fi; }
is() { n=$((n + 1)); if [ "$1" = "$2" ]; then echo "ok $n - $3"; else echo "not ok $n - $3"; echo "#   got '$1', expected '$2'"; fails=$((fails + 1)); fi; }
skip() { n=$((n + 1)); echo "ok $n - $2 # skip $1"; }
like() { n=$((n + 1)); if [[ $1 =~ $2 ]]; then echo "ok $n - $3"; else echo "not ok $n - $3"; echo "#   got '$1', expected to match '$2'"; fails=$((fails + 1)); fi; }
