# Shared by the byolctl CLI tests (source it after setting $byolctl).

# expect_exit EXIT "message part" args...: byolctl args... exits EXIT with exactly one line on
# stderr that contains the message part.
expect_exit() {
  local want_rc=$1 want=$2; shift 2
  local err rc=0
  err=$("$byolctl" "$@" 2>&1 >/dev/null) || rc=$?
  [ "$rc" -eq "$want_rc" ] || { echo "FAIL: exit $rc (not $want_rc) for: $*"; exit 1; }
  [ "$(echo "$err" | wc -l)" -eq 1 ] || { echo "FAIL: not one line: $err"; exit 1; }
  echo "$err" | grep -qF -- "$want" || { echo "FAIL: '$err' lacks '$want'"; exit 1; }
  echo "ok: $err"
}

# expect_fail "message part" args...: a failure (exit 1) with that one-line message.
expect_fail() {
  expect_exit 1 "$@"
}
