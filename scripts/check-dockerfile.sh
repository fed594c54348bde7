#!/usr/bin/env bash
# Static check of deploy/Dockerfile against the build (no Docker needed): the image must be able to build
# itself from the sources it copies.
#   1. every directory the root CMakeLists.txt add_subdirectory()s under the options the build stage configures
#      (-D... on its cmake line, else the option()'s default) is COPYed into the build stage, and so is every
#      path the root CMakeLists.txt names under ${CMAKE_CURRENT_SOURCE_DIR} / ${PROJECT_SOURCE_DIR} (e.g. the
#      cmake/ module path) and every top-level directory a copied CMakeLists.txt or source #includes from
#   2. each COPY has one source, copied to a destination of the same name (`COPY a/ b/ ./` would merge the
#      contents of a/ and b/ into ./), and no copied path is excluded by deploy/Dockerfile.dockerignore
#   3. every executable the copied directories add_executable() is installed into /out (the runtime image)
#   4. the runtime stage EXPOSEs every default port of a *_LISTEN variable in components/base/src/config.cc
#   5. the runtime stage's org.opencontainers.image.version label default is project(VERSION) in CMakeLists.txt
# Usage: scripts/check-dockerfile.sh [DOCKERFILE]   (default deploy/Dockerfile; exits 1 on any failure)
set -euo pipefail
cd "$(dirname "$0")/.."
DF=${1:-deploy/Dockerfile}
IGNORE=${DF}.dockerignore
[ -f "$IGNORE" ] || IGNORE=.dockerignore
errors=()
err() { errors+=("$*"); }

# Dockerfile lines with continuations joined, comments dropped.
joined=$(awk '/^[[:space:]]*#/ { next } { if (sub(/\\[[:space:]]*$/, "")) { buf = buf $0 " "; next } print buf $0; buf = "" }' "$DF")
# The lines of one stage (FROM ... AS NAME up to the next FROM).
stage() { awk -v want="$1" 'toupper($1) == "FROM" { in_stage = (tolower($NF) == want) } in_stage' <<<"$joined"; }
build_stage=$(stage build)
runtime_stage=$(stage runtime)
[ -n "$build_stage" ] || { echo "check-dockerfile: no 'FROM ... AS build' stage in $DF"; exit 1; }
[ -n "$runtime_stage" ] || { echo "check-dockerfile: no 'FROM ... AS runtime' stage in $DF"; exit 1; }

# ---- what the build stage copies (paths relative to the repository root, no trailing slash) ----
copied=()
while read -r line; do
  # shellcheck disable=SC2206
  words=($line)
  args=()
  for w in "${words[@]:1}"; do
    case $w in --from=*) continue 2 ;; --*) ;; *) args+=("$w") ;; esac
  done
  n=${#args[@]}
  [ "$n" -ge 2 ] || { err "COPY without source and destination: $line"; continue; }
  dest=${args[n-1]%/}
  for src in "${args[@]:0:n-1}"; do
    src=${src%/}; src=${src#./}
    if [ -d "$src" ]; then
      [ "$dest" = "$src" ] || err "COPY $src/ must go to $src/ (it goes to ${args[n-1]}: a directory's contents would land there)"
    elif [ -f "$src" ]; then
      [ "$dest" = "." ] || [ "$dest" = "$src" ] || [ "$(dirname "$src")" = "$dest" ] \
        || err "COPY $src goes to ${args[n-1]}, not to its own path"
    else
      err "COPY $src: no such file or directory in the repository"
    fi
    copied+=("$src")
  done
done < <(grep -iE '^[[:space:]]*(COPY|ADD)[[:space:]]' <<<"$build_stage")
is_copied() {
  local p=$1 c
  for c in "${copied[@]}"; do
    [ "$p" = "$c" ] && return 0
    case $p in "$c"/*) return 0 ;; esac
  done
  return 1
}

# ---- the options the build stage configures with, and the root CMakeLists.txt's option() defaults ----
declare -A opt
while read -r name value; do opt[$name]=$value; done < <(
  grep -oE 'option\([A-Za-z0-9_]+ "[^"]*" (ON|OFF)\)' CMakeLists.txt | sed -E 's/option\(([A-Za-z0-9_]+) "[^"]*" (ON|OFF)\)/\1 \2/')
while read -r name value; do opt[$name]=$value; done < <(
  grep -iE '^[[:space:]]*RUN .*cmake ' <<<"$build_stage" | grep -oE -- '-D[A-Za-z0-9_]+(:[A-Z]+)?=[^[:space:]]+' \
    | sed -E 's/^-D([A-Za-z0-9_]+)(:[A-Z]+)?=(.*)$/\1 \3/')
truthy() { case ${1^^} in ON|1|TRUE|YES|Y) return 0 ;; *) return 1 ;; esac; }

# ---- walk the root CMakeLists.txt: add_subdirectory() calls and source-tree paths in reachable code ----
# A condition that is an option name (or NOT one) is evaluated; any other condition counts as possibly true
# (both of its branches are reachable). A return() in a branch known to be taken ends the walk.
required=(CMakeLists.txt)
stack=()   # per open if(): "T" taken, "F" not taken, "?" unknown; the else() branch flips T/F
reachable() { local s; for s in "${stack[@]}"; do [ "$s" = F ] && return 1; done; return 0; }
certain() { local s; for s in "${stack[@]}"; do [ "$s" = T ] || return 1; done; return 0; }
eval_cond() {
  local c=$1 neg=0
  c=$(sed -E 's/^[[:space:]]+|[[:space:]]+$//g' <<<"$c")
  if [[ $c =~ ^NOT[[:space:]]+(.*)$ ]]; then neg=1; c=${BASH_REMATCH[1]}; fi
  if [[ $c =~ ^[A-Za-z0-9_]+$ ]] && [ -n "${opt[$c]+x}" ]; then
    if truthy "${opt[$c]}"; then r=T; else r=F; fi
    if [ $neg = 1 ]; then [ $r = T ] && r=F || r=T; fi
    echo $r
  else
    echo "?"
  fi
}
subdir_re='add_subdirectory\([[:space:]]*([^[:space:])]+)'
while IFS= read -r line; do
  line=${line%%#*}
  if [[ $line =~ ^[[:space:]]*if[[:space:]]*\((.*)\)[[:space:]]*$ ]]; then
    stack+=("$(eval_cond "${BASH_REMATCH[1]}")")
  elif [[ $line =~ ^[[:space:]]*elseif[[:space:]]*\( ]]; then
    stack[-1]="?"
  elif [[ $line =~ ^[[:space:]]*else[[:space:]]*\( ]]; then
    case ${stack[-1]} in T) stack[-1]=F ;; F) stack[-1]=T ;; esac
  elif [[ $line =~ ^[[:space:]]*endif[[:space:]]*\( ]]; then
    unset 'stack[-1]'
  elif reachable; then
    if [[ $line =~ ^[[:space:]]*return[[:space:]]*\( ]] && certain; then
      break
    fi
    if [[ $line =~ $subdir_re ]]; then
      required+=("${BASH_REMATCH[1]}")
    fi
    while read -r p; do
      [ -n "$p" ] && required+=("${p%/}")
    done < <(grep -oE '\$\{(CMAKE_CURRENT_SOURCE_DIR|CMAKE_SOURCE_DIR|PROJECT_SOURCE_DIR)\}/[A-Za-z0-9_./-]+' <<<"$line" \
               | sed -E 's/^\$\{[A-Z_]+\}\///')
  fi
done <CMakeLists.txt
subdirs=()
for r in "${required[@]}"; do [ -d "$r" ] && [ -f "$r/CMakeLists.txt" ] && subdirs+=("$r"); done

# Inside the added directories: ${PROJECT_SOURCE_DIR}/X paths and #include "X/..." of another top-level directory.
top_dirs=$(find . -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf '%f\n')
for d in "${subdirs[@]}"; do
  while read -r p; do
    [ -n "$p" ] && required+=("${p%/}")
  done < <(grep -rhoE '\$\{(CMAKE_SOURCE_DIR|PROJECT_SOURCE_DIR)\}/[A-Za-z0-9_./-]+' --include=CMakeLists.txt --include='*.cmake' "$d" \
             | sed -E 's/^\$\{[A-Z_]+\}\///' || true)
  while read -r top; do
    grep -qx "$top" <<<"$top_dirs" && required+=("$top")
  done < <(grep -rhoE '^[[:space:]]*#[[:space:]]*include[[:space:]]+"[^"/]+/' "$d" | sed -E 's/.*"([^"/]+)\/$/\1/' | sort -u || true)
done

declare -A seen
for r in "${required[@]}"; do
  [ -n "${seen[$r]+x}" ] && continue
  seen[$r]=1
  is_copied "$r" || err "$r is needed by the build (root CMakeLists.txt or an #include) but not COPYed into the build stage"
done

# ---- .dockerignore must not drop what is copied ----
if [ -f "$IGNORE" ]; then
  while read -r pat; do
    pat=${pat%/}
    for c in "${copied[@]}"; do
      # shellcheck disable=SC2053
      if [[ $c == $pat || $c == $pat/* ]]; then err "$c is COPYed but $IGNORE excludes it ($pat)"; fi
    done
  done < <(grep -vE '^[[:space:]]*(#|!|$)' "$IGNORE" | grep -v '^\*\*/')
fi

# ---- every executable is installed into the image ----
installs=$(grep -E 'install .*/out/' <<<"$build_stage" || true)
targets=$(grep -iE '^[[:space:]]*RUN .*cmake --build' <<<"$build_stage" || true)
for d in "${subdirs[@]}"; do
  while read -r exe; do
    [ -n "$exe" ] || continue
    grep -qE "/$exe([[:space:]]|$)" <<<"$installs" || err "executable $exe ($d/CMakeLists.txt) is not installed into /out"
    if grep -q -- '--target' <<<"$targets"; then
      grep -qE "[[:space:]]$exe([[:space:]]|$)" <<<"$targets" || err "executable $exe is not in the build stage's --target list"
    fi
  done < <(grep -oE 'add_executable\([[:space:]]*[A-Za-z0-9_.-]+' "$d/CMakeLists.txt" | sed -E 's/add_executable\([[:space:]]*//')
done

# ---- ports ----
exposed=" $(grep -iE '^[[:space:]]*EXPOSE' <<<"$runtime_stage" | sed -E 's/^[[:space:]]*EXPOSE//I' | tr '\n' ' ') "
ports=$(grep -E '^[[:space:]]*\{"[A-Z_]*_LISTEN"' components/base/src/config.cc | grep -oE ':[0-9]{2,5}\b' | tr -d ':' | sort -un)
[ -n "$ports" ] || err "no default ports of *_LISTEN variables found in components/base/src/config.cc"
for p in $ports; do
  [[ $exposed == *" $p "* || $exposed == *" $p/tcp "* ]] || err "runtime stage does not EXPOSE $p (a default *_LISTEN port in components/base/src/config.cc)"
done

# ---- version label ----
version=$(grep -oE 'project\([^)]*VERSION[[:space:]]+[0-9][0-9.]*' CMakeLists.txt | grep -oE '[0-9][0-9.]*$')
if grep -q 'org.opencontainers.image.version=' <<<"$runtime_stage"; then
  label=$(grep -oE 'org.opencontainers.image.version="?[^"[:space:]]+' <<<"$runtime_stage" | head -1 | sed -E 's/.*=("?)//')
  if [[ $label =~ ^\$\{?([A-Za-z0-9_]+)\}?$ ]]; then
    label=$(grep -oE "^[[:space:]]*ARG ${BASH_REMATCH[1]}=[^[:space:]]*" <<<"$runtime_stage" | head -1 | sed 's/.*=//')
  fi
  [ "$label" = "$version" ] || err "org.opencontainers.image.version is '$label', CMakeLists.txt project(VERSION) is $version"
else
  err "runtime stage has no org.opencontainers.image.version label"
fi
for l in source licenses; do
  grep -q "org.opencontainers.image.$l=" <<<"$runtime_stage" || err "runtime stage has no org.opencontainers.image.$l label"
done

if [ ${#errors[@]} -gt 0 ]; then
  echo "check-dockerfile: $DF FAILED:"
  printf '   %s\n' "${errors[@]}"
  exit 1
fi
echo "   ok: $DF copies the ${#seen[@]} paths the build needs ($(printf '%s\n' "${!seen[@]}" | sort | paste -sd' ')), installs every executable, exposes ports $(paste -sd' ' <<<"$ports"), version $version"
