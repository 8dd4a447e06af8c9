#!/usr/bin/env bash
# check_layers.sh: fail when an #include points the wrong way.
# storage includes nothing from ingest/query/server; ingest and query include nothing
# from server; ingest and query do not include each other.
set -u
root="${1:-.}"
bad=0
check() { # dir, forbidden-regex
    local hits
    hits=$(grep -rnE "#include \"($2)/" "$root/$1" --include='*.[ch]' 2>/dev/null || true)
    if [ -n "$hits" ]; then echo "layer violation in $1/:"; echo "$hits"; bad=1; fi
}
check storage 'ingest|query|server'
check ingest 'query|server'
check query 'ingest|server'
# file names unique across the tree
dups=$(find "$root"/storage "$root"/ingest "$root"/query "$root"/server -name '*.[ch]' -printf '%f\n' | sort | uniq -d)
if [ -n "$dups" ]; then echo "duplicate file names: $dups"; bad=1; fi
[ $bad -eq 0 ] && echo "1 passed, 0 failed" || echo "0 passed, 1 failed"
exit $bad
