// The one error type of the Runtime module (configuration, repositories, containers).
// Every message says what went wrong and what the user can do about it.
#if canImport(Glibc)
import Glibc
#endif
import Registry

public enum RuntimeError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A line of a udocker.conf file that cannot be parsed.
    case configSyntax(file: String, line: Int, message: String)
    /// A configuration file named on the command line (--config) that does not exist.
    case configFileMissing(String)
    /// A configuration value that does not have the expected form.
    case badConfigValue(key: String, value: String, expected: String, source: String)
    /// A UDOCKER_* environment variable whose value cannot be used.
    case badEnvironment(variable: String, value: String, expected: String)
    /// A directory that should hold a udocker repository but does not.
    case notARepository(String)
    /// A path that must be a directory but is a file.
    case notADirectory(String)
    /// A directory that cannot become a repository because it already holds other files.
    case notEmptyForRepository(String)
    /// A directory that cannot become a content store because it already holds other files.
    case notEmptyForStore(String)
    /// A repository already recorded with one store, asked to use another.
    case storeMismatch(repository: String, recorded: String, requested: String)
    /// A repository or store bookkeeping file that is damaged.
    case badMetadata(path: String, reason: String)
    /// A store written by a newer udocker.
    case unsupportedStoreFormat(path: String, version: Int)
    /// A system call on a path failed.
    case storeMissing(repository: String, store: String)
    case io(String, String, Int32)
    /// An image name that cannot name a local image.
    case invalidImageName(String, String)
    case imageNotFound(String)
    case imageExists(String)
    /// Every image of an archive being loaded has a name that exists.
    case imagesExist([String])
    case imageProtected(String)
    /// An image whose record is unreadable.
    case badImageRecord(path: String, reason: String)
    /// An unpacked layer an image needs that the store does not have, or cannot read.
    case layerMissing(String)
    case layerUnreadable(String, String)
    /// A store layer whose files do not match its layer.json.
    case storeLayerDamaged(layer: String, path: String, reason: String)
    case storeProtection(reason: String)
    case containerNotFound(String)
    case containerProtected(String)
    case containerNameExists(String)
    case containerNameNotFound(String)
    /// `run NAME`: no container has that name or id, and it is no image (why; close container and image names).
    case noContainerOrImage(name: String, why: String, containers: [String], images: [String])
    case invalidContainerName(String, String)
    /// A container whose metadata files are missing or damaged.
    case badContainer(path: String, reason: String)
    /// Creating (or cloning) a container failed part way; what was made has been removed.
    case createFailed(what: String, reason: String)

    // MARK: export, import, load, save
    /// An archive that could not be written (path or "standard output", reason).
    case archiveWrite(String, String)
    /// An archive that could not be read as a tar (source, reason).
    case archiveRead(String, String)
    /// An archive that was read but whose content is not a usable image (source, reason).
    case badArchive(String, String)
    /// An output file that exists and must not be overwritten.
    case outputExists(String)
    case internalFailure(String)

    // MARK: execution
    /// An engine program that is not installed, or a setting naming one that is not there.
    case engineMissing(tool: String, why: String)
    /// A mode that cannot run here (mode, reason, modes that would work).
    case modeUnusable(mode: String, why: String, usable: [String])
    /// A run option that cannot be honoured (what, what to do).
    case badRunOption(String, String)
    /// The command to run is not in the container.
    case commandNotFound(String)
    /// Starting or switching a container's engine failed (what, why).
    case executionFailed(String, String)
    /// A container patched for a Fakechroot mode whose directory moved since (old, new root, id).
    case containerMoved(old: String, new: String, container: String)
    /// `setup --nvidia` cannot be done (what, what to do).
    case nvidiaFailed(String, String)

    // MARK: install
    /// A tools bundle that is refused before anything of it is installed (source, reason).
    case badToolsBundle(String, String)
    /// Installing a verified tools bundle into bin/ and lib/ could not be done (what, what to do).
    case toolsInstallFailed(String, String)
    /// A container whose execmode needs patched files (F3/F4) that were never patched (container, mode).
    case containerNotSetUp(container: String, mode: String)

    // MARK: sync (Sources/Runtime/Sync): add sync cases below, each with its message at the end of `description`
    /// Names given to sync or export --repo that are neither images nor containers (names, the images there are).
    case syncNamesNotFound([String], images: [String])
    /// A sync location that is neither a directory path, ssh://[user@]host[:port]/path nor docker://host[:port]/namespace.
    case syncBadLocation(String, reason: String)
    // MARK: sync core (protocol, sender, receiver, CLI)
    /// The two ends of a sync speak different protocol versions (far end's, ours).
    case syncProtocolMismatch(far: Int, local: Int)
    /// A frame of the sync stream failed its check or made no sense (what, where).
    case syncBadStream(String)
    /// The far end could not be started or ended before its hello (command, exit status, its last stderr lines).
    case syncFarEndEnded(command: String, status: String, stderr: String)
    /// The far end reported a failure of its own (its message).
    case syncFarEndFailed(String)
    /// The connection ended in the middle of the sync (what was going on, the far end's status if known).
    case syncConnectionLost(String)
    /// A sync location this build cannot reach yet (the location, what to do).
    case syncNotAvailable(String, String)
    /// An object that arrived whole but does not match its digest (digest, what its content hashes to).
    case syncObjectMismatch(String, actual: String)
    // MARK: sync ssh
    /// ssh could not reach the far host or log in (its exit status 255, what it said).
    case syncSSHFailed(location: String, stderr: String)
    /// The far host has no udocker where --remote-udocker (default: PATH) says.
    case syncRemoteUdockerMissing(location: String, remote: String, stderr: String)
    /// --install-remote could not copy this binary to the far host.
    case syncInstallRemoteFailed(location: String, reason: String)
    // MARK: sync containers (delta, arrival, mode conversion)
    /// A container whose image (name, as imagerepo.name has it) is not in the repository, so its delta cannot be computed.
    case syncContainerImageMissing(container: String, image: String)
    /// An arriving container's image (name, manifest digest) is not in the target repository.
    case syncArrivalImageMissing(container: String, image: String, manifest: String)
    /// An arriving container's delta blob (digest) is not in the target store.
    case syncArrivalDeltaMissing(container: String, digest: String)
    /// A name an arriving container has is held by another container of the target (name, that container's id).
    case syncContainerNameTaken(name: String, container: String, other: String)
    /// The container delta could not be made or applied (container, what went wrong).
    case syncDeltaFailed(container: String, reason: String)
    // MARK: sync bundle
    /// A bundle given to import --repo that is not one, or is damaged (the bundle, what is wrong).
    case bundleBad(String, String)
    /// A bundle of a format this udocker does not read (bundle, its format, ours, who wrote it).
    case bundleFormat(String, format: Int, known: Int, writtenBy: String)
    /// Objects the bundle left out (export --have) that this store lacks (bundle, how many, the first).
    case bundleOmittedMissing(String, count: Int, first: String)
    /// A have file (store have) that cannot be used (path, why).
    case bundleHaveFile(String, String)
    // MARK: sync registry
    /// A local image or container name that has no registry repository name under the naming rule (name, why).
    case syncRegistryName(String, reason: String)
    /// The registry of a docker:// location refused or failed a request (location, what was being done, the error).
    case syncRegistryFailed(location: String, what: String, RegistryError)
    /// Names given to `sync --from=docker://…` that the namespace does not hold (names, location, what it holds).
    case syncRegistryNamesNotFound([String], location: String, available: [String])
    /// A container image in the registry whose udocker annotation cannot be used (repository:tag, why).
    case syncRegistryBadContainer(String, reason: String)

    public var description: String {
        switch self {
        case .configSyntax(let file, let line, let message):
            return "\(file) line \(line): \(message); fix or remove that line (udocker.conf lines are 'key = value' under [DEFAULT])"
        case .configFileMissing(let path):
            return "configuration file \(path) does not exist: check the path given with --config"
        case .badConfigValue(let key, let value, let expected, let source):
            return "configuration key '\(key)' has the value '\(value)' (from \(source)), expected \(expected): fix it there"
        case .badEnvironment(let variable, let value, let expected):
            return "environment variable \(variable)='\(value)' is invalid, expected \(expected): fix or unset it"
        case .notARepository(let path):
            return "invalid udocker repository: \(path): create it with 'udocker mkrepo \(path)' or check --repo"
        case .notADirectory(let path):
            return "\(path) exists and is not a directory: give the path of a directory"
        case .notEmptyForRepository(let path):
            return "\(path) exists, is not empty and is not a udocker repository: give a new or empty directory"
        case .notEmptyForStore(let path):
            return "\(path) exists, is not empty and is not a udocker store (no store.json): give a new or empty directory, or an existing store"
        case .storeMismatch(let repository, let recorded, let requested):
            return "repository \(repository) already uses the store \(recorded), not \(requested): leave out --store, or make a new repository with 'udocker mkrepo --store=\(requested) DIR'"
        case .badMetadata(let path, let reason):
            return "\(path) is damaged (\(reason)): restore it from a backup, or remove it and run 'udocker mkrepo' on the repository again"
        case .unsupportedStoreFormat(let path, let version):
            return "store \(path) has format version \(version), which this udocker does not know: upgrade udocker"
        case .storeMissing(let repository, let store):
            return "the content store \(store) of repository \(repository) is missing: mount the filesystem it lives on, or point \(repository)/store.path at the store's new place"
        case .io(let op, let path, let err):
            return "\(op) \(path): \(String(cString: strerror(err))) (errno \(err))" + RuntimeError.hint(err)
        case .invalidImageName(let name, let why):
            return "invalid image name '\(name)': \(why). Use [HOST[:PORT]/]NAME[:TAG], e.g. ubuntu:22.04"
        case .imageNotFound(let name):
            return "image not found: \(name): see 'udocker images', or pull it with 'udocker pull \(name)'"
        case .imageExists(let name):
            return "image \(name) already exists: remove it first with 'udocker rmi \(name)', or choose another name"
        case .imagesExist(let names):
            return "nothing loaded: the archive's image(s) \(names.joined(separator: ", ")) exist already, and load does not replace an image (as udocker): remove them with 'udocker rmi', or load under another name with 'udocker load -i FILE REPO/IMAGE'"
        case .imageProtected(let name):
            return "image \(name) is protected: run 'udocker unprotect \(name)' first"
        case .badImageRecord(let path, let reason):
            return "image record \(path) is damaged (\(reason)): remove the image with 'udocker rmi -f' and pull it again"
        case .archiveWrite(let dest, let why):
            return "cannot write the archive to \(dest): \(why); nothing was left under that name"
        case .archiveRead(let source, let why):
            return "cannot read \(source) as a tar archive: \(why); check that it is a complete tar file (plain, gzip, zstd, xz or bzip2)"
        case .badArchive(let source, let why):
            return "\(source): \(why)"
        case .outputExists(let path):
            return "output file already exists: \(path): remove it or choose another name"
        case .internalFailure(let what):
            return "internal error: \(what); please report it"
        case .layerMissing(let d):
            return "unpacked layer \(d) is not in the store: pull the image again (after 'udocker rmi -f' of it)"
        case .layerUnreadable(let d, let why):
            return "unpacked layer \(d) cannot be read (\(why)): run 'udocker store verify' and pull the image again"
        case .storeLayerDamaged(let layer, let path, let reason):
            return "store layer \(layer) is damaged at '\(path)' (\(reason)): run 'udocker store verify --repair' and pull the image again"
        case .storeProtection(let reason):
            return reason
        case .containerNotFound(let c):
            return "container not found: \(c): see 'udocker ps'"
        case .containerProtected(let c):
            return "container \(c) is protected: run 'udocker unprotect \(c)' first"
        case .containerNameExists(let n):
            return "container name already exists: \(n): choose another name, or remove it with 'udocker rmname \(n)'"
        case .containerNameNotFound(let n):
            return "no container has the name \(n): see 'udocker ps'"
        case .noContainerOrImage(let n, let why, let containers, let images):
            var close: [String] = []
            if !containers.isEmpty { close.append("container \(containers.joined(separator: ", ")) (udocker ps)") }
            if !images.isEmpty { close.append("image \(images.joined(separator: ", ")) (udocker images)") }
            return "no container or image named \(n): no container has that name or id, and \(why); "
                + (close.isEmpty ? "see 'udocker ps' and 'udocker images'" : "did you mean " + close.joined(separator: " or ") + "?")
        case .invalidContainerName(let n, let why):
            return "invalid container name '\(n)': \(why)"
        case .badContainer(let path, let reason):
            return "container \(path) is damaged (\(reason)): remove it with 'udocker rm -f' and create it again"
        case .createFailed(let what, let reason):
            return "\(what) failed: \(reason); the partly made container was removed"
        case .engineMissing(let tool, let why):
            return "\(tool) not found: \(why); install it with 'udocker install --from=FILE|URL' (a tools bundle) or your distribution's package, set \(EngineTool(rawValue: tool)?.variable ?? "its UDOCKER_USE_* variable"), or choose another mode with 'udocker setup --execmode=MODE CONTAINER' (see 'udocker info')"
        case .modeUnusable(let mode, let why, let usable):
            let alt = usable.isEmpty ? "no other mode can run it on this host: see 'udocker info'"
                : "modes that work here: \(usable.joined(separator: " ")); switch with 'udocker setup --execmode=MODE CONTAINER'"
            return "execution mode \(mode) cannot run here: \(why); \(alt)"
        case .badRunOption(let what, let todo):
            return "\(what): \(todo)"
        case .commandNotFound(let cmd):
            return "command not found or has no execute bit set in the container: \(cmd): give its full path or fix PATH with -e PATH=..."
        case .executionFailed(let what, let why):
            return "\(what) failed: \(why)"
        case .containerMoved(let old, let new, let c):
            return "container \(c) was set up at \(old) and is now at \(new): its patched files still point to the old place; run 'udocker setup --force \(c)' to patch them for the new place"
        case .badToolsBundle(let source, let why):
            return "tools bundle \(source) refused: \(why); nothing was installed (make a bundle with scripts/build-tools-bundle.sh)"
        case .toolsInstallFailed(let what, let todo), .nvidiaFailed(let what, let todo):
            return "\(what): \(todo)"
        case .containerNotSetUp(let c, let mode):
            return "container \(c) is in mode \(mode) but its files are not patched for it: run 'udocker setup --execmode=\(mode) --force \(c)'"
        case .syncNamesNotFound(let names, let images):
            return "no image or container named \(names.joined(separator: ", ")): see 'udocker images' and 'udocker ps'"
                + (images.isEmpty ? "" : " (images here: \(images.joined(separator: ", ")))")
        case .syncBadLocation(let location, let reason):
            return "'\(location)' is not a place to sync with: \(reason) (give a directory, ssh://[user@]host[:port]/path or docker://host[:port]/namespace)"
        // MARK: sync core
        case .syncProtocolMismatch(let far, let local):
            return "far end speaks sync protocol \(far), this udocker speaks \(local): use the same udocker version on both hosts"
        case .syncBadStream(let why):
            return "the sync stream is damaged: \(why); nothing damaged was kept (objects are verified before they are stored): run the sync again, and check the connection if this repeats"
        case .syncFarEndEnded(let command, let status, let stderr):
            return "the far end of the sync (\(command)) ended before it answered: \(status)"
                + (stderr.isEmpty ? "" : "; it said: \(stderr)")
        case .syncFarEndFailed(let message):
            return "the far end of the sync failed: \(message)"
        case .syncConnectionLost(let why):
            return "the sync connection ended \(why); what arrived complete is kept: run the sync again to send the rest"
        case .syncNotAvailable(let location, let todo):
            return "cannot sync with \(location): \(todo)"
        case .syncObjectMismatch(let digest, let actual):
            return "the object \(digest) that arrived does not match its digest (its content is \(actual)); nothing of it was stored: run 'udocker store verify' on the sending side, whose copy may be damaged"
        // MARK: sync ssh
        case .syncSSHFailed(let location, let stderr):
            return "ssh could not reach \(location)" + (stderr.isEmpty ? "" : " (\(stderr))")
                + ": check that plain ssh to that host works (host name, port, user, keys); --ssh=COMMAND or UDOCKER_SSH give ssh other options"
        case .syncRemoteUdockerMissing(let location, let remote, let stderr):
            return "there is no udocker '\(remote)' on the far host of \(location)" + (stderr.isEmpty ? "" : " (\(stderr))")
                + ": give its path with --remote-udocker=PATH, or add --install-remote to copy this udocker to ~/.cache/udocker/bin/ there"
        case .syncInstallRemoteFailed(let location, let reason):
            return "--install-remote could not copy udocker to the far host of \(location): \(reason); check the far user's home has room and is writable"
        // MARK: sync containers
        case .syncContainerImageMissing(let c, let image):
            return "container \(c) was created from image \(image), which is not in this repository, so what it changed cannot be computed: pull or load \(image) again"
        case .syncArrivalImageMissing(let c, let image, let manifest):
            return "container \(c) needs image \(image) (\(manifest)), which the target repository does not have: send the image with it"
        case .syncArrivalDeltaMissing(let c, let digest):
            return "the delta of container \(c) (blob \(digest)) is not in the target store: send it again"
        case .syncContainerNameTaken(let name, let c, let other):
            return "container name \(name) of arriving container \(c) is already taken by container \(other) here: rename or remove that one, or use --force to replace it"
        case .syncDeltaFailed(let c, let reason):
            return "container \(c) could not be moved: \(reason)"
        // MARK: sync bundle
        case .bundleBad(let source, let why):
            return "\(source) is not a usable repository bundle: \(why); nothing of it was recorded (write bundles with 'udocker export --repo')"
        case .bundleFormat(let source, let format, let known, let writtenBy):
            return "\(source) is a repository bundle of format \(format) (written by \(writtenBy)), this udocker reads format \(known): import it with a udocker of that version"
        case .bundleOmittedMissing(let source, let count, let first):
            return "\(source) leaves out \(count) object(s) (\(first) first) because its have file said this store holds them, but it does not: nothing was recorded; write a new have file here with 'udocker store have -o FILE' and export the bundle again with --have=FILE, or without --have"
        case .bundleHaveFile(let path, let why):
            return "cannot use the have file \(path): \(why); write it on the target with 'udocker store have -o FILE'"
        // MARK: sync registry
        case .syncRegistryName(let name, let reason):
            return "'\(name)' cannot be sent to a registry: \(reason) (give it another name with 'udocker tag' or 'udocker name')"
        case .syncRegistryFailed(let location, let what, let error):
            return "sync with \(location) failed while \(what): \(error)"
        case .syncRegistryNamesNotFound(let names, let location, let available):
            return "\(location) has no image or container named \(names.joined(separator: ", "))"
                + (available.isEmpty ? "" : " (it holds: \(available.joined(separator: ", ")))")
                + "; name images as 'udocker images' shows them (repo/image:tag) and containers by name or id"
        case .syncRegistryBadContainer(let ref, let reason):
            return "\(ref) looks like a udocker container but cannot be brought back: \(reason); pull it as an image with 'udocker pull' instead"
        }
    }

    private static func hint(_ err: Int32) -> String {
        switch err {
        case ENOSPC: return ": the disk is full, free some space"
        case EACCES, EPERM: return ": check the permissions of that directory or use another one (--repo, UDOCKER_DIR)"
        case EROFS: return ": the filesystem is read-only, use a repository on a writable filesystem"
        case EDQUOT: return ": disk quota exceeded, free some space"
        case ENOTDIR: return ": a part of that path is a file, not a directory"
        default: return ""
        }
    }
}

extension RuntimeError {
    /// Whether this is a run that could not be set up (a volume, working directory, user or command
    /// the container lacks), which udocker's engines end with exit status 2.
    public var isRunSetUpFailure: Bool {
        switch self {
        case .badRunOption, .commandNotFound: return true
        default: return false
        }
    }
}
