# shellcheck shell=bash
# Test dependencies outside Cargo: the Python virtualenv and the Node packages.
#
# Both are reused across runs while their pinned inputs are unchanged: a stamp file holding
# the sha256 of those inputs sits inside the installed tree, and a mismatch (or a missing
# tree) means a clean reinstall.

# sha256_of FILE...: one digest over the given files, in order.
sha256_of() {
    cat "$@" | sha256sum | cut -d ' ' -f 1
}

# ensure_venv VENV_DIR REQUIREMENTS_FILE [PYTHON]
# Creates VENV_DIR with PYTHON (default python3) -m venv and installs the pinned requirements,
# unless a previous run already did so for the same requirements and the same interpreter.
ensure_venv() {
    local venv=$1 requirements=$2 python=${3:-python3}
    local stamp="$venv/.tributary-requirements.sha256" wanted
    # The interpreter's version is part of the stamp: a new python3 gets a new venv.
    wanted=$( ("$python" --version && cat "$requirements") | sha256sum | cut -d ' ' -f 1)
    if [[ -x $venv/bin/python && -f $stamp && $(cat "$stamp") == "$wanted" ]]; then
        echo "reusing $venv ($("$venv/bin/python" --version); requirements unchanged)"
        return 0
    fi
    echo "creating $venv from $requirements"
    "$python" -m venv --clear "$venv"
    "$venv/bin/python" -m pip install --disable-pip-version-check --no-input --quiet -r "$requirements"
    echo "$wanted" >"$stamp"
    "$venv/bin/python" -m pip freeze --disable-pip-version-check
}

# ensure_node_modules PACKAGE_DIR
# Runs `npm ci` in PACKAGE_DIR unless node_modules already matches package.json and
# package-lock.json.
ensure_node_modules() {
    local package_dir=$1
    local stamp="$package_dir/node_modules/.tributary-lock.sha256" wanted
    if [[ ! -f $package_dir/package-lock.json ]]; then
        echo "$package_dir has no package-lock.json; npm ci needs one" >&2
        return 1
    fi
    wanted=$(sha256_of "$package_dir/package.json" "$package_dir/package-lock.json")
    if [[ -f $stamp && $(cat "$stamp") == "$wanted" ]]; then
        echo "reusing $package_dir/node_modules (package-lock.json unchanged)"
        return 0
    fi
    echo "installing $package_dir/node_modules with npm ci"
    (cd "$package_dir" && npm ci --no-audit --no-fund)
    echo "$wanted" >"$stamp"
}

# python_version MAJOR.MINOR: prints the path of an interpreter of that version: pythonX.Y on
# PATH, else the newest pyenv installation of it. Fails with a message naming both places.
python_version() {
    local wanted=$1 candidate
    candidate=$(command -v "python$wanted" 2>/dev/null || true)
    if [[ -n $candidate ]] && "$candidate" -c 'import sys' 2>/dev/null; then
        echo "$candidate"
        return 0
    fi
    local pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
    candidate=$(find "$pyenv_root/versions" -maxdepth 3 -path "*/versions/$wanted.*/bin/python$wanted" 2>/dev/null | sort -V | tail -n 1)
    if [[ -n $candidate ]]; then
        echo "$candidate"
        return 0
    fi
    echo "Python $wanted is needed (the azure-functions line it runs): neither python$wanted on PATH nor $pyenv_root/versions/$wanted.* exists; install it (e.g. pyenv install $wanted)" >&2
    return 1
}
