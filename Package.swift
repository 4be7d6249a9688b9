// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "hdlabel",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "hdlabel", targets: ["hdlabel"]),
        .library(name: "HDLabelCore", targets: ["HDLabelCore"]),
        .library(name: "HDLabelCluster", targets: ["HDLabelCluster"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // C shims: system libraries reached through small headers.
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c"),
        // Core: embeddings -> kNN graph -> HDL labels -> metrics. No MPI here.
        .target(
            name: "HDLabelCore",
            dependencies: ["CBLAS", "CZlib", .product(name: "Logging", package: "swift-log")],
            swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]
        ),
        // Cluster: communicator, sharding, distributed graph, root hierarchy, broadcast.
        .target(
            name: "HDLabelCluster",
            dependencies: ["HDLabelCore", "CMPI", "CBLAS", .product(name: "Logging", package: "swift-log")]
        ),
        // Thin CLI.
        .executableTarget(
            name: "hdlabel",
            dependencies: [
                "HDLabelCore", "HDLabelCluster",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Multi-rank checks of the cluster code; run under mpirun by Scripts/mpi-tests.sh.
        .executableTarget(name: "hdlabel-mpitest", dependencies: ["HDLabelCore", "HDLabelCluster"]),
        .testTarget(name: "HDLabelCoreTests", dependencies: ["HDLabelCore"]),
        .testTarget(name: "HDLabelClusterTests", dependencies: ["HDLabelCluster", "HDLabelCore"]),
        // Runs the built `hdlabel` binary as a user would (needs `swift build` first).
        .testTarget(name: "hdlabelTests", dependencies: ["HDLabelCore"]),
    ],
    swiftLanguageModes: [.v5]
)
