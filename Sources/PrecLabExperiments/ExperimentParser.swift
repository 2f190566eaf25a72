import Foundation
import PrecLabFormats
import PrecLabReplay
import PrecLabSupport
import PrecLabSynth

/// Reads and checks an experiment file. Every mistake is a usage error (exit 2) naming
/// the file and the key, before anything is synthesised or written: the file is the
/// experiment's command line.
public enum ExperimentParser {
    static let topKeys = ["name", "question", "stream", "grid", "replay", "spectral", "outputs"]
    static let streamKeys = ["shapes"] + Experiment.Knob.allCases.map(\.rawValue)
    static let replayKeys = ["dtype", "policies", "null", "curve_every", "seed"]
    static let spectralKeys = ["rank", "alpha"]

    public static func load(path: String) throws -> Experiment {
        guard let data = FileManager.default.contents(atPath: path) else {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
                throw PrecLabError.invalidArgument("\(path): is a directory, expected an experiment file")
            }
            throw PrecLabError.invalidArgument("\(path): cannot read the experiment file (does it exist?)")
        }
        let value: JSONValue
        do {
            value = try JSONParser.parse([UInt8](data))
        } catch let error as JSONParseError {
            throw PrecLabError.invalidArgument("\(path): not valid JSON \(error)")
        }
        return try parse(value, file: path)
    }

    static func parse(_ value: JSONValue, file: String) throws -> Experiment {
        let context = Context(file: file)
        let root = try context.object(value, at: "the top level")
        try context.checkKeys(root, allowed: topKeys, at: "the top level")

        let name = try context.string(root, "name", at: "")
        guard !name.isEmpty, name.count <= 64,
              name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            throw context.error("\"name\" must be 1-64 letters, digits, '-' or '_' (got \"\(name)\")")
        }
        let question = try context.string(root, "question", at: "")

        // stream
        let streamObject = try context.object(try context.required(root, "stream", at: ""), at: "\"stream\"")
        try context.checkKeys(streamObject, allowed: streamKeys, at: "\"stream\"")
        let shapesValue = try context.required(streamObject, "shapes", at: "stream.")
        guard let shapeItems = shapesValue.arrayValue, !shapeItems.isEmpty else {
            throw context.error("\"stream.shapes\" must be a non-empty array of \"ROWSxCOLS\" strings")
        }
        let shapes = try shapeItems.map { item -> (rows: Int, columns: Int) in
            guard let text = item.stringValue else {
                throw context.error("\"stream.shapes\" holds \(item.kindName); expected strings like \"256x512\"")
            }
            return try context.shape(text)
        }
        var recipe = Experiment.StreamRecipe(
            shapes: shapes,
            steps: try context.steps(try context.required(streamObject, "steps", at: "stream."), at: "stream.steps"),
            learningRate: try context.learningRate(try context.required(streamObject, "lr", at: "stream."),
                                                   at: "stream.lr"))
        for (key, value) in streamObject.pairs where key != "shapes" {
            let knob = Experiment.Knob(rawValue: key)!  // checkKeys allowed only knobs
            recipe.set(knob, try context.knob(knob, value, at: "stream.\(key)"))
        }

        // replay
        var replay = Experiment.ReplaySettings(format: .bf16, policies: ReplayPolicy.allCases, nullPermute: false,
                                               curveEvery: nil, seed: 0)
        if let replayValue = root["replay"] {
            let object = try context.object(replayValue, at: "\"replay\"")
            try context.checkKeys(object, allowed: replayKeys, at: "\"replay\"")
            if let dtype = object["dtype"] { replay.format = try context.format(dtype, at: "replay.dtype") }
            if let policies = object["policies"] {
                guard let items = policies.arrayValue, !items.isEmpty else {
                    throw context.error("\"replay.policies\" must be a non-empty array of policy names")
                }
                var parsed: [ReplayPolicy] = []
                for item in items {
                    guard let text = item.stringValue, let policy = ReplayPolicy(rawValue: text) else {
                        throw context.error("\"replay.policies\": unknown policy \(describe(item)) (expected "
                                            + ReplayPolicy.allCases.map(\.rawValue).joined(separator: ", ") + ")")
                    }
                    if !parsed.contains(policy) { parsed.append(policy) }
                }
                replay.policies = parsed.sorted()
            }
            if let null = object["null"] {
                guard let flag = null.boolValue else {
                    throw context.error("\"replay.null\" must be true or false (got \(describe(null)))")
                }
                replay.nullPermute = flag
            }
            if let every = object["curve_every"] {
                guard let number = every.integerValue, number >= 1, number <= Int64(Experiment.maximumSteps) else {
                    throw context.error("\"replay.curve_every\" must be an integer from 1 to \(Experiment.maximumSteps) (got \(describe(every)))")
                }
                replay.curveEvery = Int(number)
            }
            if let seed = object["seed"] { replay.seed = try context.seed(seed, at: "replay.seed") }
        }

        // spectral
        var spectral: Experiment.SpectralSettings? = nil
        if let spectralValue = root["spectral"] {
            let object = try context.object(spectralValue, at: "\"spectral\"")
            try context.checkKeys(object, allowed: spectralKeys, at: "\"spectral\"")
            var settings = Experiment.SpectralSettings(rank: 16, alpha: 0.5)
            if let rank = object["rank"] { settings.rank = try context.positiveInteger(rank, at: "spectral.rank") }
            if let alpha = object["alpha"] {
                guard let number = alpha.doubleValue, number > 0, number < 1 else {
                    throw context.error("\"spectral.alpha\" must be a number between 0 and 1 (got \(describe(alpha)))")
                }
                settings.alpha = number
            }
            spectral = settings
        }

        // grid
        let gridObject = try context.object(try context.required(root, "grid", at: ""), at: "\"grid\"")
        guard gridObject.count > 0 else {
            throw context.error("\"grid\" must name at least one axis ("
                                + Experiment.Axis.allNames.joined(separator: ", ") + ")")
        }
        var grid: [(axis: Experiment.Axis, values: [Experiment.AxisValue])] = []
        var pointCount = 1
        for (key, value) in gridObject.pairs {
            guard let axis = Experiment.Axis(rawValue: key) else {
                throw context.error("unknown grid axis \"\(key)\" (expected "
                                    + Experiment.Axis.allNames.joined(separator: ", ") + ")")
            }
            guard let items = value.arrayValue, !items.isEmpty else {
                throw context.error("\"grid.\(key)\" must be a non-empty array of values (got \(describe(value)))")
            }
            let at = "grid.\(key)"
            let values: [Experiment.AxisValue] = try items.map { item in
                switch axis {
                case .knob(let knob): return try context.knob(knob, item, at: at)
                case .dtype: return .text(try context.format(item, at: at).name)
                }
            }
            for index in values.indices where values[..<index].contains(values[index]) {
                throw context.error("\"\(at)\" lists \(values[index].text) twice")
            }
            grid.append((axis, values))
            pointCount *= values.count
            guard pointCount <= Experiment.maximumGridPoints else {
                throw context.error("the grid has more than \(Experiment.maximumGridPoints) points; split the experiment")
            }
        }

        // outputs
        let outputsValue = try context.required(root, "outputs", at: "")
        guard let outputItems = outputsValue.arrayValue, !outputItems.isEmpty else {
            throw context.error("\"outputs\" must be a non-empty array of "
                                + Experiment.Output.allCases.map(\.rawValue).joined(separator: ", "))
        }
        var outputs: [Experiment.Output] = []
        for item in outputItems {
            guard let text = item.stringValue, let output = Experiment.Output(rawValue: text) else {
                throw context.error("\"outputs\": unknown output \(describe(item)) (expected "
                                    + Experiment.Output.allCases.map(\.rawValue).joined(separator: ", ") + ")")
            }
            if !outputs.contains(output) { outputs.append(output) }
        }
        if outputs.contains(.spectral), spectral == nil {
            throw context.error("output \"spectral\" needs a \"spectral\" object (k, rank, alpha)")
        }
        if outputs.contains(.curve), !replay.policies.contains(where: { $0 != .fp32 }) {
            throw context.error("output \"curve\" needs at least one stored policy in \"replay.policies\"")
        }

        let experiment = Experiment(name: name, question: question, stream: recipe, grid: grid,
                                    replay: replay, spectral: spectral, outputs: outputs)
        for point in experiment.points {
            try context.checkModel(point, grid: grid)
            let bytes = (point.stream.steps + 2) * point.stream.elements * 4
            guard bytes <= Experiment.maximumStreamBytes else {
                throw context.error("grid point \(point.label): its stream would take \(bytes / 1_000_000) MB "
                                    + "(limit \(Experiment.maximumStreamBytes / 1_000_000) MB); use fewer steps or smaller shapes")
            }
        }
        return experiment
    }

    /// A JSON value as it appears in a message.
    static func describe(_ value: JSONValue) -> String {
        switch value {
        case .string(let text): return "\"\(text)\""
        case .integer, .number, .bool, .null: return value.serialized(indent: 0)
        default: return value.kindName
        }
    }

    /// Error construction and typed reads, all naming the file.
    struct Context {
        let file: String

        func error(_ message: String) -> PrecLabError {
            .invalidArgument("\(file): \(message)")
        }

        /// The value of a knob at `place` ("stream.snr", "grid.snr"), checked on its own.
        func knob(_ knob: Experiment.Knob, _ value: JSONValue, at place: String) throws -> Experiment.AxisValue {
            func number(_ range: ClosedRange<Double>) throws -> Experiment.AxisValue {
                guard let x = value.doubleValue, x.isFinite, range.contains(x) else {
                    throw error("\"\(place)\" must be a number from \(compactDecimal(range.lowerBound)) to \(compactDecimal(range.upperBound)) (got \(describe(value)))")
                }
                return .number(x)
            }
            switch knob {
            case .profile: return .text(try profile(value, at: place).rawValue)
            case .placement:
                guard let text = value.stringValue, SignalPlacement(rawValue: text) != nil else {
                    throw error("\"\(place)\": unknown placement \(describe(value)) (expected "
                                + SignalPlacement.allCases.map(\.rawValue).joined(separator: ", ") + ")")
                }
                return .text(text)
            case .snr: return try number(0 ... 1e6)
            case .noiseRMS: return try number(0 ... 1e6)
            case .rotation: return try number(0 ... 1)
            case .rowSpread, .columnSpread, .baseTail: return try number(0 ... 4)
            case .spectrumExponent: return try number(0 ... 10)
            case .entryRMS:
                let result = try number(0 ... 1e6)
                if result.number == 0 { throw error("\"\(place)\" must be above 0") }
                return result
            case .k, .signalRank: return .number(Double(try positiveInteger(value, at: place)))
            case .lr: return .number(try learningRate(value, at: place))
            case .steps: return .number(Double(try steps(value, at: place)))
            case .seed: return .number(Double(try seed(value, at: place)))
            }
        }

        /// Checks the knobs of a grid point together against every shape (k below the
        /// smaller side, rotation with a placed signal, ...), naming the keys that set them.
        func checkModel(_ point: Experiment.GridPoint, grid: [(axis: Experiment.Axis, values: [Experiment.AxisValue])]) throws {
            func place(_ knob: Experiment.Knob) -> String {
                grid.contains { $0.axis == .knob(knob) } ? "grid.\(knob.rawValue)" : "stream.\(knob.rawValue)"
            }
            let recipe = point.stream
            let at = point.values.isEmpty ? "" : " at grid point \(point.label)"
            if recipe.profile == nil, recipe.placement == nil {
                throw error("the stream needs \"profile\" (a preset: rl, sft, noise) or \"placement\" (off, in, random)\(at)")
            }
            for shape in recipe.shapes where recipe.k >= min(shape.rows, shape.columns) {
                throw error("\"\(place(.k))\" = \(recipe.k) must be below the smaller side of every shape (\(shape.rows)x\(shape.columns))\(at)")
            }
            let gradient = recipe.gradient
            if gradient.placement == .random, gradient.rotation > 0, gradient.hasSignal {
                throw error("\"\(place(.rotation))\" needs placement off or in, not random\(at)")
            }
            do {
                let configuration = recipe.configuration(threads: 1)
                try configuration.validate()
                for (index, shape) in recipe.shapes.enumerated() {
                    try SyntheticStreamGenerator.validate(gradient: configuration.gradient, rows: shape.rows,
                                                          columns: shape.columns,
                                                          name: SynthTensorSource.defaultName(index: index))
                }
            } catch let failure as PrecLabError {
                throw error("the stream\(at): \(failure.description)")
            }
        }

        func object(_ value: JSONValue, at place: String) throws -> JSONObject {
            guard let object = value.objectValue else {
                throw error("\(place) must be a JSON object, found \(value.kindName)")
            }
            return object
        }

        func checkKeys(_ object: JSONObject, allowed: [String], at place: String) throws {
            for key in object.keys where !allowed.contains(key) {
                if key == "k", place == "\"spectral\"" {
                    throw error("unknown key \"k\" in \"spectral\": k is \"stream.k\", one value for the signal's placement and the metrics")
                }
                throw error("unknown key \"\(key)\" in \(place) (allowed: \(allowed.joined(separator: ", ")))")
            }
        }

        func required(_ object: JSONObject, _ key: String, at prefix: String) throws -> JSONValue {
            guard let value = object[key] else { throw error("missing required key \"\(prefix)\(key)\"") }
            return value
        }

        func string(_ object: JSONObject, _ key: String, at prefix: String) throws -> String {
            let value = try required(object, key, at: prefix)
            guard let text = value.stringValue else {
                throw error("\"\(prefix)\(key)\" must be a string, found \(value.kindName)")
            }
            return text
        }

        func shape(_ text: String) throws -> (rows: Int, columns: Int) {
            let sides = text.lowercased().split(separator: "x", omittingEmptySubsequences: false)
            guard sides.count == 2, let rows = Int(sides[0]), let columns = Int(sides[1]),
                  rows >= 2, columns >= 2, rows <= Experiment.maximumSide, columns <= Experiment.maximumSide else {
                throw error("\"stream.shapes\": invalid shape \"\(text)\" (expected ROWSxCOLS, each side 2 to \(Experiment.maximumSide))")
            }
            return (rows, columns)
        }

        func steps(_ value: JSONValue, at place: String) throws -> Int {
            guard let number = value.integerValue, number >= 1, number <= Int64(Experiment.maximumSteps) else {
                throw error("\"\(place)\" must be an integer from 1 to \(Experiment.maximumSteps) (got \(describe(value)))")
            }
            return Int(number)
        }

        func learningRate(_ value: JSONValue, at place: String) throws -> Double {
            guard let number = value.doubleValue, number.isFinite, number > 0, number <= 1 else {
                throw error("\"\(place)\" must be a learning rate above 0 and at most 1 (got \(describe(value)))")
            }
            return number
        }

        func profile(_ value: JSONValue, at place: String) throws -> SynthProfile {
            guard let text = value.stringValue, let profile = SynthProfile(rawValue: text) else {
                throw error("\"\(place)\": unknown profile \(describe(value)) (expected "
                            + SynthProfile.allCases.map(\.rawValue).joined(separator: ", ") + ")")
            }
            return profile
        }

        func seed(_ value: JSONValue, at place: String) throws -> UInt64 {
            guard let number = value.integerValue, number >= 0, number < (1 << 53) else {
                throw error("\"\(place)\" must be an integer from 0 to 2^53 - 1 (got \(describe(value)))")
            }
            return UInt64(number)
        }

        func positiveInteger(_ value: JSONValue, at place: String) throws -> Int {
            guard let number = value.integerValue, number >= 1, number <= 4096 else {
                throw error("\"\(place)\" must be an integer from 1 to 4096 (got \(describe(value)))")
            }
            return Int(number)
        }

        func format(_ value: JSONValue, at place: String) throws -> FloatFormat {
            guard let text = value.stringValue, let format = try? FloatFormat.named(text) else {
                throw error("\"\(place)\": unknown dtype \(describe(value)) (expected a format name such as bf16, fp16, e4m3fn)")
            }
            return format
        }
    }
}
