import HDLabelIO
import Foundation
import HDLabelCluster
import HDLabelCore

// Multi-rank checks of HDLabelCluster, plus two helper modes used by the scripts:
//   hdlabel-mpitest                          run every check (under `mpirun -np P`); rank 0 prints the results
//   hdlabel-mpitest gen EMB.npy LABELS.npy N D CLASSES SEEDS_PER_CLASS   write synthetic clustered data
//   hdlabel-mpitest gen-noisy EMB.npy LABELS.npy N D CLASSES RATE LABELED_FRACTION
//                                            the same data with fully/partly given labels under pair noise (for issues)
//   hdlabel-mpitest job EMB LABELS OUT [--sharded-output] [--tile T] [--k K] [--method M] [--evidence E] [--distributed-labeling] [--timings F] [--blas-threads B]
//                                            run the cluster job (for scripts when the `hdlabel cluster` subcommand is
//                                            not registered in this build)
//   hdlabel-mpitest issues-job EMB LABELS OUT [--tile T] [--rounds R]   the cluster label-issue job
//   both job modes also take --fault ACTION:POINT:RANK[:NTH] and --pause POINT:SECONDS[:MARKER] (Faults.swift), and
//   --max-count N (the Communicator's per-call element limit, to exercise the chunking)

func stderrLine(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

let args = Array(CommandLine.arguments.dropFirst())

switch args.first {
case "gen":
    guard args.count == 7 || (args.count == 8 && args[7] == "sorted"), let n = Int(args[3]), let d = Int(args[4]),
          let c = Int(args[5]), let s = Int(args[6]) else {
        stderrLine("usage: hdlabel-mpitest gen EMB.npy LABELS.npy N D CLASSES SEEDS_PER_CLASS [sorted]"); exit(2)
    }
    do {
        try SyntheticData(n: n, d: d, classes: c, seedsPerClass: s, sortedByClass: args.count == 8).write(embeddings: args[1], labels: args[2])
    } catch {
        stderrLine("error: \(error)"); exit(1)
    }
    exit(0)
case "split":
    // Writes EMB.npy as SHARDS .npy files OUT_DIR/part-000.npy … of uneven sizes (rows in order), for shard-input tests.
    guard args.count == 4, let shards = Int(args[3]), shards >= 1 else {
        stderrLine("usage: hdlabel-mpitest split EMB.npy OUT_DIR SHARDS"); exit(2)
    }
    do {
        let x = try NPY.readEmbeddings(path: args[1])
        var start = 0
        for s in 0 ..< shards {
            // Shard s gets a share proportional to s + 1 (uneven borders that fall inside tiles).
            let end = s == shards - 1 ? x.rows : start + x.rows * 2 * (s + 1) / (shards * (shards + 1))
            try NPY.write(x.slice(rows: start ..< end), to: args[2] + "/part-" + String(format: "%03d", s) + ".npy")
            start = end
        }
    } catch { stderrLine("error: \(error)"); exit(1) }
    exit(0)
case "gen-noisy":
    guard args.count == 8, let n = Int(args[3]), let d = Int(args[4]), let c = Int(args[5]), let rate = Double(args[6]),
          let frac = Double(args[7]) else {
        stderrLine("usage: hdlabel-mpitest gen-noisy EMB.npy LABELS.npy N D CLASSES RATE LABELED_FRACTION"); exit(2)
    }
    do {
        let data = SyntheticData(n: n, d: d, classes: c, seedsPerClass: 1)
        try NPY.write(data.x, to: args[1])
        try NPY.write(ints: data.noisyLabels(noise: .pair, rate: rate, labeledFraction: frac, classes: c).map(Int.init), to: args[2])
    } catch { stderrLine("error: \(error)"); exit(1) }
    exit(0)
case "job":
    exit(runJobMode(Array(args.dropFirst())))
case "issues-job":
    exit(runIssuesJobMode(Array(args.dropFirst())))
default:
    exit(runChecks())
}

/// A value of a test-mode option, parsed strictly: an unparsable value stops the run (exit 2) instead of a default.
struct BadTestOption: Error { let flag: String, value: String }
func parsed<T>(_ flag: String, _ value: String, _ parse: (String) -> T?) throws -> T {
    guard let v = parse(value) else { throw BadTestOption(flag: flag, value: value) }
    return v
}

/// `job` mode: the cluster job run in-process, so that a test `FaultInjector` can be installed (the production CLI,
/// `hdlabel cluster`, has none); the other multi-rank tests and `Scripts/scaling.sh` run the real CLI. Exit code 0 on
/// success, 1 on an (agreed) error, 2 on a bad option.
func runJobMode(_ a: [String]) -> Int32 {
    guard a.count >= 3 else { stderrLine("usage: hdlabel-mpitest job EMB LABELS OUT [options]"); return 2 }
    var o = ClusterJobOptions(embeddings: a[0], labels: a[1], output: a[2])
    var i = 3
    var blasThreads = 1
    var faults = FaultPlan()
    var maxCount = Int(Int32.max)
    do {
        while i < a.count {
            let flag = a[i], value = i + 1 < a.count ? a[i + 1] : ""
            if faults.parse(flag, value) { i += 2; continue }
            switch flag {
            case "--max-count": maxCount = try parsed(flag, value) { Int($0) }
            case "--sharded", "--sharded-output": o.shardedOutput = true; i += 1; continue
            case "--distributed-labeling": o.distributedLabeling = true; i += 1; continue
            case "--evidence": o.config.evidence = try parsed(flag, value) { EvidenceMode(rawValue: $0) }
            case "--tile": o.tile = try parsed(flag, value) { Int($0) }
            case "--k": o.config.k = try parsed(flag, value) { KSetting($0) }
            case "--k-max": o.config.kMax = try parsed(flag, value) { Int($0) }
            case "--method": o.config.method = try parsed(flag, value) { LabelMethod(rawValue: $0) }
            case "--timings": o.timingsPath = value
            case "--checkpoint": o.checkpointDir = value
            case "--blas-threads": blasThreads = try parsed(flag, value) { Int($0) }
            default: stderrLine("unknown option \(flag)"); return 2
            }
            i += 2
        }
        try o.config.validate()
    } catch let e as BadTestOption { stderrLine("bad value '\(e.value)' for \(e.flag)"); return 2 } catch { stderrLine("error: \(error)"); return 2 }
    BLASThreads.set(blasThreads)
    o.faultInjector = faults.injector()
    var comm: Communicator
    do { comm = try Communicator.initialize() } catch { stderrLine("error: \(error)"); return 1 }
    comm.maxCount = maxCount
    defer { Communicator.finalize() }
    do {
        let r = try ClusterJob.run(comm: comm, options: o, log: { stderrLine($0) })
        if comm.isRoot { stderrLine("done: k=\(r.chosenK), \(r.timings.totalSeconds) s, reused checkpoint: \(r.reusedCheckpoint)") }
        return 0
    } catch {
        if comm.isRoot { stderrLine("error: \(error)") }
        return 1
    }
}
