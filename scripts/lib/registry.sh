# Shell helpers shared by the demo and the benchmarks: a local Debian docker-registry on loopback and
# OCI images built from Debian's busybox-static, pushed with skopeo. Source this file; needs bash.

# start_registry DIR [CERT KEY]: starts docker-registry on a free 127.0.0.1 port with its storage in
# DIR (over https with CERT and KEY when given), waits until it answers, and sets REGISTRY_PORT and
# REGISTRY_PID. stop_registry stops it.
start_registry() {
  local dir=$1 cert=${2:-} key=${3:-} tls="" scheme=http
  mkdir -p "$dir/storage"
  REGISTRY_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  if [ -n "$cert" ]; then
    scheme=https
    tls=$(printf '  tls:\n    certificate: %s\n    key: %s' "$cert" "$key")
  fi
  cat > "$dir/config-$REGISTRY_PORT.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$REGISTRY_PORT
$tls
YML
  docker-registry serve "$dir/config-$REGISTRY_PORT.yml" > "$dir/registry-$REGISTRY_PORT.log" 2>&1 &
  REGISTRY_PID=$!
  for _ in $(seq 100); do
    if python3 -c "import ssl,urllib.request; urllib.request.urlopen('$scheme://127.0.0.1:$REGISTRY_PORT/v2/', context=ssl._create_unverified_context())" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "docker-registry did not start; see $dir/registry-$REGISTRY_PORT.log" >&2
  return 1
}

stop_registry() {
  # The registry dies of the TERM sent here: its status (143) is not a failure of the caller's
  # (an EXIT trap's last status becomes the script's).
  if [ -n "${REGISTRY_PID:-}" ]; then
    kill "$REGISTRY_PID" 2>/dev/null && wait "$REGISTRY_PID" 2>/dev/null || true
  fi
  REGISTRY_PID=
}

# oci_add_blob LAYOUT FILE: moves FILE into LAYOUT/blobs/sha256 by digest; prints "digest size".
oci_add_blob() {
  local layout=$1 file=$2 hex size
  hex=$(sha256sum "$file" | cut -d' ' -f1)
  size=$(stat -c %s "$file")
  mkdir -p "$layout/blobs/sha256"
  mv "$file" "$layout/blobs/sha256/$hex"
  echo "sha256:$hex $size"
}

# build_oci_image LAYOUT TAG CMD LAYER_DIR...: writes an OCI image layout with one gzip layer per
# directory given (bottom first), a config whose Cmd is CMD (a JSON array), and tag TAG.
build_oci_image() {
  local layout=$1 tag=$2 cmd=$3; shift 3
  mkdir -p "$layout/blobs/sha256"
  echo '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
  local diff_ids="" layers="" d tmp diffid blob
  for d in "$@"; do
    tmp=$(mktemp "$layout/layer.XXXXXX")
    tar -C "$d" --numeric-owner --owner=0 --group=0 -cf - . | gzip -1 > "$tmp"
    diffid=$(gunzip -c "$tmp" | sha256sum | cut -d' ' -f1)
    blob=$(oci_add_blob "$layout" "$tmp")
    diff_ids="$diff_ids${diff_ids:+,}\"sha256:$diffid\""
    layers="$layers${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"${blob% *}\",\"size\":${blob#* }}"
  done
  tmp=$(mktemp "$layout/config.XXXXXX")
  printf '{"architecture":"amd64","os":"linux","config":{"Cmd":%s,"Env":["PATH=/usr/local/bin:/usr/bin:/bin"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' \
    "$cmd" "$diff_ids" > "$tmp"
  local config; config=$(oci_add_blob "$layout" "$tmp")
  tmp=$(mktemp "$layout/manifest.XXXXXX")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[%s]}' \
    "${config% *}" "${config#* }" "$layers" > "$tmp"
  local manifest; manifest=$(oci_add_blob "$layout" "$tmp")
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
    "${manifest% *}" "${manifest#* }" "$tag" > "$layout/index.json"
}

# busybox_rootfs DIR: a minimal root filesystem from Debian's busybox-static.
busybox_rootfs() {
  local root=$1 a
  mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root"
  cp /bin/busybox "$root/bin/busybox"
  for a in sh ls cat echo id uname true false env sleep; do ln -sf busybox "$root/bin/$a"; done
  echo "root:x:0:0:root:/root:/bin/sh" > "$root/etc/passwd"
  echo "root:x:0:" > "$root/etc/group"
}

# push_oci LAYOUT TAG DEST: pushes the image to the local registry (docker v2 schema 2 media types,
# which every client including udocker 1.3 reads).
push_oci() {
  skopeo copy --quiet --dest-tls-verify=false --format v2s2 "oci:$1:$2" "docker://127.0.0.1:$REGISTRY_PORT/$3"
}
