// swift-tools-version:6.0
import PackageDescription

// Modules, dependencies one way (ARCHITECTURE.md):
//   HDLabelCore (labeling pipeline, no files/MPI/subprocesses)
//     <- HDLabelIO (files, manifests, timing)
//     <- HDLabelCuration (label issues, review)  <- HDLabelReport (metrics, HTML)  <- HDLabelBench (datasets, PCA, benchmarks)
//     <- HDLabelCluster (MPI, on core + I/O + curation)
//     <- hdlabel (CLI on everything), hdlabel-mpitest (multi-rank test executable)
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
        // Core: embeddings -> kNN graph -> propagation / HDL / baselines -> labels. No MPI, files or subprocesses.
        .target(name: "HDLabelCore", dependencies: ["CBLAS"]),
        // I/O: .npy / raw / labels CSV, atomic files, manifests, the wall clock.
        .target(name: "HDLabelIO", dependencies: ["HDLabelCore"]),
        // Curation: label-issue detection and the review loop.
        .target(name: "HDLabelCuration", dependencies: ["HDLabelCore", "HDLabelIO"]),
        // Report: quality metrics, report numbers and the HTML page.
        .target(name: "HDLabelReport", dependencies: ["HDLabelCore", "HDLabelIO"]),
        // Bench: datasets (IDX, Fashion-MNIST, WordNet), PCA, splits, synthetic noise, benchmarks, Python baselines.
        .target(name: "HDLabelBench", dependencies: ["HDLabelCore", "HDLabelIO", "HDLabelReport", "CBLAS", "CZlib"]),
        // Cluster: communicator, sharding, distributed graph, root hierarchy, broadcast.
        .target(name: "HDLabelCluster", dependencies: ["HDLabelCore", "HDLabelIO", "HDLabelCuration", "CMPI", "CBLAS"]),
        // Thin CLI.
        .executableTarget(
            name: "hdlabel",
            dependencies: [
                "HDLabelCore", "HDLabelIO", "HDLabelCuration", "HDLabelReport", "HDLabelBench", "HDLabelCluster",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Multi-rank checks of the cluster code; run under mpirun by Scripts/mpi-tests.sh.
        .executableTarget(name: "hdlabel-mpitest", dependencies: ["HDLabelCore", "HDLabelIO", "HDLabelCuration", "HDLabelBench", "HDLabelCluster"]),
        // Tests mirror the modules; shared deterministic test data lives in one support target.
        .target(name: "HDLabelTestSupport", dependencies: ["HDLabelCore"], path: "Tests/TestSupport"),
        .testTarget(name: "HDLabelCoreTests", dependencies: ["HDLabelCore", "HDLabelTestSupport"]),
        .testTarget(name: "HDLabelIOTests", dependencies: ["HDLabelIO", "HDLabelCore", "HDLabelTestSupport"]),
        .testTarget(name: "HDLabelCurationTests", dependencies: ["HDLabelCuration", "HDLabelBench", "HDLabelIO", "HDLabelCore", "HDLabelTestSupport"]),
        .testTarget(name: "HDLabelReportTests", dependencies: ["HDLabelReport", "HDLabelIO", "HDLabelCore", "HDLabelTestSupport"]),
        .testTarget(name: "HDLabelBenchTests", dependencies: ["HDLabelBench", "HDLabelReport", "HDLabelIO", "HDLabelCore", "HDLabelTestSupport"]),
        .testTarget(name: "HDLabelClusterTests", dependencies: ["HDLabelCluster", "HDLabelIO", "HDLabelCore"]),
        // Runs the built `hdlabel` binary as a user would (needs `swift build` first).
        .testTarget(name: "hdlabelTests", dependencies: ["HDLabelCore", "HDLabelIO", "HDLabelReport", "HDLabelBench", "HDLabelTestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
