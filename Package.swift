// swift-tools-version:6.1
// udocker for Swift: package layout. Modules depend downwards only: udocker -> Runtime -> Registry -> CAS.
import PackageDescription

let package = Package(
    name: "udocker",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "udocker", targets: ["udocker"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // System libraries, each found through pkg-config where Debian ships a .pc file.
        .systemLibrary(name: "CLMDB", path: "Sources/CLMDB",
                       providers: [.apt(["liblmdb-dev"])]),
        // Headers only: libarchive itself is loaded on first use by CArchiveLazy (see archive_lazy.c).
        .systemLibrary(name: "CArchive", path: "Sources/CArchive",
                       providers: [.apt(["libarchive-dev"])]),
        // Headers only: libcurl itself is loaded on first use by CCurlShim (see curl_lazy.c).
        .systemLibrary(name: "CCurl", path: "Sources/CCurl",
                       providers: [.apt(["libcurl4-openssl-dev"])]),
        // Small C helpers for calls Swift cannot make directly (variadic ioctl/fcntl/curl_easy_setopt)
        // and for the SHA-256 inner loop over OpenSSL's libcrypto (loaded with dlopen on first use).
        .target(name: "CShim", path: "Sources/CShim",
                linkerSettings: [.linkedLibrary("dl")]),

        // Non-variadic wrappers for curl_easy_setopt/getinfo, and libcurl loaded with dlopen on first
        // use, so commands that never touch the network (run above all) start without it.
        .target(name: "CCurlShim", path: "Sources/CCurlShim",
                linkerSettings: [.linkedLibrary("dl")]),

        // libarchive loaded with dlopen on first use, so commands that read no tar (run) start without it.
        .target(name: "CArchiveLazy", path: "Sources/CArchiveLazy",
                linkerSettings: [.linkedLibrary("dl")]),

        .target(name: "CAS", dependencies: ["CLMDB", "CArchive", "CArchiveLazy", "CShim"]),
        .target(name: "Registry", dependencies: ["CAS", "CCurl", "CCurlShim", "CShim"]),
        // Runtime embeds the library `run` preloads in sealed containers (Preload/link_copy.c) and the
        // exit relay PRoot starts (Preload/exit_relay.c), which the EmbedPreload plugin compiles on
        // their own: they must not link against libc or Swift.
        .target(name: "Runtime", dependencies: ["CAS", "Registry", "CShim", "CArchive"],
                exclude: ["Preload/link_copy.c", "Preload/exit_relay.c"], plugins: ["EmbedPreload"]),
        .plugin(name: "EmbedPreload", capability: .buildTool(), path: "Plugins/EmbedPreload"),
        .executableTarget(name: "udocker", dependencies: [
            "CAS", "Registry", "Runtime",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Fixtures shared by the test targets: processes, a real registry, test images, running udocker.
        .target(name: "TestSupport", dependencies: ["CAS", "CShim"], path: "Tests/TestSupport"),
        .testTarget(name: "CASTests", dependencies: ["CAS", "CShim", "CArchive"]),
        .testTarget(name: "RegistryTests", dependencies: ["Registry", "CAS", "TestSupport"]),
        .testTarget(name: "RuntimeTests", dependencies: ["Runtime", "CAS", "TestSupport"]),
        .testTarget(name: "IntegrationTests", dependencies: ["CAS", "CShim", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
