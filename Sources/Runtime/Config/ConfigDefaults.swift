// The built-in configuration: every key udocker 1.3 (1.3.17 config.py) knows, in its order,
// with values written the way udocker's showconf prints them, plus this implementation's own keys.

public enum ConfigDefaults {
    /// The udocker release whose configuration keys and defaults these are.
    public static let udockerRelease = "1.3.17"

    /// Keys added by this implementation (not in udocker 1.3); shown after udocker's own keys.
    public static let ownKeys: [String] = ["storedir", "materialize", "materialize_link_dirs", "pull_parallel", "nvi_ldconfig",
                                         "download_low_speed_limit", "download_low_speed_time", "max_document_size",
                                         "max_layer_expansion"]

    /// The default configuration in udocker's order. `home` is the user's home directory,
    /// `tmpdir` the value of TMPDIR (udocker falls back to /tmp).
    /// Values use Python's str() form because udocker's showconf prints them that way:
    /// None for unset, True/False, lists in [...] and tuples in (...).
    public static func entries(home: String, tmpdir: String?) -> [(key: String, value: String)] {
        let homedir = (home == "/" ? "" : home) + "/.udocker"
        let tmp = (tmpdir?.isEmpty == false ? tmpdir : nil) ?? "/tmp"
        return [
            ("verbose_level", "3"),
            ("homedir", homedir),
            ("topdir", homedir),
            ("bindir", "None"),
            ("libdir", "None"),
            ("docdir", "None"),
            ("reposdir", "None"),
            ("layersdir", "None"),
            ("containersdir", "None"),
            ("tarball_release", "1.2.11"),
            ("tarball", "https://download.a.incd.pt/udocker/udocker-englib-1.2.11.tar.gz "
                + "https://raw.githubusercontent.com/jorge-lip/udocker-builds/master/tarballs/udocker-englib-1.2.11.tar.gz"),
            ("installinfo", "['https://raw.githubusercontent.com/indigo-dc/udocker/master/messages']"),
            ("installretry", "3"),
            ("autoinstall", "True"),
            ("config", "udocker.conf"),
            ("keystore", "keystore"),
            ("tmpdir", tmp),
            ("cmd", "['bash', '-i']"),
            ("root_path", "/usr/sbin:/sbin:/usr/bin:/bin"),
            ("user_path", "/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin"),
            ("sysdirs_list", "('/dev', '/proc', '/sys', '/etc/resolv.conf', '/etc/host.conf', '/lib/modules')"),
            ("dri_list", "('/usr/lib64/dri', '/lib64/dri', '/usr/lib/dri', '/lib/dri')"),
            ("mountpoint_prefixes", "('/etc',)"),
            ("override_default_execution_mode", ""),
            ("default_execution_modes", "{'x86_64': 'P1', 'x86': 'P1', 'arm64': 'P1', 'arm': 'P2', 'ppc64le': 'R1', 'DEFAULT': 'R1'}"),
            ("proot_noseccomp", "None"),
            ("proot_killonexit", "True"),
            ("proot_link2symlink", "False"),
            ("ld_so_cache", "/etc/ld.so.cache"),
            ("fakechroot_so", "None"),
            // udocker lowercases str(None) when it applies the environment, so showconf prints "none".
            ("fakechroot_expand_symlinks", "none"),
            ("fakechroot_cmd_subst", "/sbin/ldconfig=#RETURN(TRUE)#:/usr/sbin/ldconfig=#RETURN(TRUE)#"),
            ("libc_search", "('/usr/lib64/libc.so.[0-9]', '/usr/lib/x86_64-linux-gnu/libc.so.[0-9]', "
                + "'/lib64/libc.so.[0-9]', '/usr/lib/libc.so.[0-9]', '/lib/libc.so.[0-9]', "
                + "'/usr/libc.so.[0-9]', '/libc.so.[0-9]', '/libc.so')"),
            ("fakechroot_libc", "None"),
            ("lib_dirs_list_nvidia", "('/usr/lib/x86_64-linux-gnu', '/usr/lib64')"),
            ("lib_dirs_list_essential", "('/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', "
                + "'/lib64', '/usr/lib64', '/lib', '/usr/lib')"),
            ("lib_dirs_list_append", "('.',)"),
            ("access_files", "('/sys/class/infiniband', '/dev/open-mx', '/dev/myri0', '/dev/myri1', "
                + "'/dev/myri2', '/dev/myri3', '/dev/myri4', '/dev/myri5', '/dev/myri6', '/dev/myri7', "
                + "'/dev/myri8', '/dev/myri9', '/dev/ipath', '/dev/kgni0', '/dev/mic/scif', '/dev/scif')"),
            ("use_proot_executable", "UDOCKER"),
            ("use_patchelf_executable", "UDOCKER"),
            ("use_runc_executable", ""),
            ("use_singularity_executable", ""),
            ("runc_nomqueue", "None"),
            ("runc_capabilities", "['CAP_KILL', 'CAP_NET_BIND_SERVICE', 'CAP_CHOWN', 'CAP_DAC_OVERRIDE', "
                + "'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', "
                + "'CAP_NET_BIND_SERVICE', 'CAP_NET_RAW', 'CAP_SYS_CHROOT', 'CAP_MKNOD', 'CAP_AUDIT_WRITE', "
                + "'CAP_SETFCAP']"),
            ("singularity_options", "['-w']"),
            ("valid_host_env", "('TERM', 'PATH', 'PROOT_TMP_DIR')"),
            ("invalid_host_env", "('VTE_VERSION',)"),
            ("cpu_affinity_exec_tools", "(['numactl', '-C', '%s', '--'], ['taskset', '-c', '%s'])"),
            ("location", ""),
            ("http_proxy", ""),
            ("timeout", "12"),
            ("download_timeout", "1800"),
            ("ctimeout", "6"),
            ("http_agent", ""),
            ("http_insecure", "False"),
            ("use_curl_executable", ""),
            ("dockerio_index_url", "https://hub.docker.com"),
            ("dockerio_registry_url", "https://registry-1.docker.io"),
            ("docker_registries", "{'docker.io': ['https://registry-1.docker.io', 'https://hub.docker.com']}"),
            ("nvi_etc_list", "['vulkan/icd.d/nvidia_icd.json', 'OpenCL/vendors/nvidia.icd']"),
            ("nvi_bin_list", "['nvidia-bug-report.sh', 'nvidia-cuda-mps-control', 'nvidia-cuda-mps-server', "
                + "'nvidia-debugdump', 'nvidia-installer', 'nvidia-persistenced', 'nvidia-settings', "
                + "'nvidia-smi', 'nvidia-uninstall', 'nvidia-xconfig']"),
            ("nvi_lib_list", "['libOpenCL.', 'libcuda.', 'libnvcuvid.', 'libnvidia-cfg.', "
                + "'libnvidia-compiler.', 'libnvidia-encode.', 'libnvidia-fatbinaryloader.', "
                + "'libnvidia-fbc.', 'libnvidia-ifr.', 'libnvidia-ml.', 'libnvidia-opencl.', "
                + "'libnvidia-ptxjitcompiler.', 'libnvidia-tls.', 'tls/libnvidia-tls.']"),
            ("nvi_dev_list", "['/dev/nvidia']"),
            // Our own keys. storedir None means <topdir>/store.
            ("storedir", "None"),
            ("materialize", "auto"),
            // The trees `auto` links to the store (the rest is copied), as ostree deployments split them.
            ("materialize_link_dirs", "('/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/opt')"),
            // Layers a pull downloads at once.
            ("pull_parallel", "3"),
            // The program whose `-p` lists the host's libraries for `setup --nvidia`; None skips it.
            ("nvi_ldconfig", "ldconfig"),
            // A blob download slower than download_low_speed_limit bytes/s for download_low_speed_time
            // seconds stops; manifests, indexes, configs and tokens are read up to max_document_size bytes.
            ("download_low_speed_limit", "1000"),
            ("download_low_speed_time", "60"),
            ("max_document_size", "8388608"),
            // A layer may unpack to this many times its blob's size (at least 256 MiB): a gzip bomb
            // stops there instead of filling the disk.
            ("max_layer_expansion", "200"),
        ]
    }

    /// UDOCKER_* environment variables and the key each sets, as udocker 1.3 applies them
    /// (Config._env_override), followed by this implementation's own variables.
    public static let environmentVariables: [(variable: String, key: String)] = [
        ("UDOCKER_LOGLEVEL", "verbose_level"),
        ("UDOCKER_DIR", "topdir"),
        ("UDOCKER_BIN", "bindir"),
        ("UDOCKER_LIB", "libdir"),
        ("UDOCKER_DOC", "docdir"),
        ("UDOCKER_REPOS", "reposdir"),
        ("UDOCKER_LAYERS", "layersdir"),
        ("UDOCKER_CONTAINERS", "containersdir"),
        ("UDOCKER_INDEX", "dockerio_index_url"),
        ("UDOCKER_REGISTRY", "dockerio_registry_url"),
        ("UDOCKER_TARBALL", "tarball"),
        ("UDOCKER_DEFAULT_EXECUTION_MODE", "override_default_execution_mode"),
        ("UDOCKER_FAKECHROOT_SO", "fakechroot_so"),
        ("UDOCKER_FAKECHROOT_LIBC", "fakechroot_libc"),
        ("UDOCKER_TMP", "tmpdir"),
        ("UDOCKER_KEYSTORE", "keystore"),
        ("UDOCKER_USE_CURL_EXECUTABLE", "use_curl_executable"),
        ("UDOCKER_USE_PROOT_EXECUTABLE", "use_proot_executable"),
        ("UDOCKER_USE_RUNC_EXECUTABLE", "use_runc_executable"),
        ("UDOCKER_USE_SINGULARITY_EXECUTABLE", "use_singularity_executable"),
        ("UDOCKER_USE_PATCHELF_EXECUTABLE", "use_patchelf_executable"),
        ("UDOCKER_FAKECHROOT_CMD_SUBST", "fakechroot_cmd_subst"),
        ("UDOCKER_FAKECHROOT_EXPAND_SYMLINKS", "fakechroot_expand_symlinks"),
        ("UDOCKER_STORE", "storedir"),
        ("UDOCKER_MATERIALIZE", "materialize"),
        ("UDOCKER_MATERIALIZE_LINK_DIRS", "materialize_link_dirs"),
        ("UDOCKER_PULL_PARALLEL", "pull_parallel"),
        ("UDOCKER_NVI_LDCONFIG", "nvi_ldconfig"),
        ("UDOCKER_TIMEOUT", "timeout"),
        ("UDOCKER_DOWNLOAD_TIMEOUT", "download_timeout"),
        ("UDOCKER_CTIMEOUT", "ctimeout"),
        ("UDOCKER_DOWNLOAD_LOW_SPEED_LIMIT", "download_low_speed_limit"),
        ("UDOCKER_DOWNLOAD_LOW_SPEED_TIME", "download_low_speed_time"),
        ("UDOCKER_MAX_DOCUMENT_SIZE", "max_document_size"),
        ("UDOCKER_MAX_LAYER_EXPANSION", "max_layer_expansion"),
    ]

    /// Set (to anything but the empty string) to skip /etc/udocker.conf, as in udocker 1.3's manual.
    public static let noSystemConfigVariable = "UDOCKER_NOSYSCONF"
    /// The system-wide configuration file.
    public static let systemConfigFile = "/etc/udocker.conf"
    /// The name of the configuration file inside a udocker directory.
    public static let configFileName = "udocker.conf"
}
