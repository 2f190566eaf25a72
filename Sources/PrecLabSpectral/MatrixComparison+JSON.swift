import PrecLabSupport

extension MatrixComparison {
    /// Each bound with its name as in the JSON and whether it holds within float64
    /// rounding: 1e-10 · max(σ_1(W0), σ_1(W1)) for the σ-based bounds (times k for Ky
    /// Fan), 1e-10 for NSS and sines.
    public var boundChecks: [(name: String, check: BoundCheck, holds: Bool)] {
        let sigma = max(singularValuesBase.first ?? 0, singularValuesTuned.first ?? 0)
        let scaled: [(String, BoundCheck, Double)] = [
            ("weyl", bounds.weyl, sigma), ("mirsky", bounds.mirsky, sigma), ("nss_mirsky", bounds.nssMirsky, 1),
            ("wedin_u", bounds.wedinU, 1), ("wedin_v", bounds.wedinV, 1), ("ky_fan", bounds.kyFan, sigma * Double(k)),
        ]
        return scaled.map { ($0.0, $0.1, $0.1.holds(tolerance: 1e-10 * max($0.2, 1e-300))) }
    }

    /// Names of the bounds the measurements exceed (empty unless something is wrong).
    public var boundViolations: [String] { boundChecks.filter { !$0.holds }.map(\.name) }

    /// The overlap keys of `jsonFields()`: each observed overlap, its random and its
    /// magnitude-stratified baseline, with the value each takes from a comparison.
    public static let overlapMetrics: [(key: String, value: @Sendable (MatrixComparison) -> Double?)] = [
        ("principal_overlap", { $0.principalOverlap }),
        ("principal_overlap_random", { $0.principalOverlapRandom }),
        ("principal_overlap_magnitude", { $0.principalOverlapMagnitude }),
        ("low_overlap", { $0.lowOverlap }),
        ("low_overlap_random", { $0.lowOverlapRandom }),
        ("low_overlap_magnitude", { $0.lowOverlapMagnitude }),
        ("control_overlap", { $0.controlOverlap }),
        ("control_overlap_random", { $0.controlOverlapRandom }),
        ("control_overlap_magnitude", { $0.controlOverlapMagnitude }),
    ]

    /// The spectral metrics as JSON fields (the names `preclab compare --json` uses for
    /// each tensor), so that every command reporting them spells them the same way.
    public func jsonFields() -> JSONObject {
        func optional(_ value: Double?) -> JSONValue { value.map { .finite($0) } ?? .null }
        func ratios(_ r: RatioSummary) -> JSONValue {
            .object(JSONObject([("mean", .finite(r.mean)), ("min", .finite(r.minimum)), ("max", .finite(r.maximum)),
                                ("std", .finite(r.standardDeviation)), ("cv", optional(r.coefficientOfVariation))]))
        }
        var o = JSONObject()
        o["nss"] = optional(nss)
        o["angle_u_max_deg"] = optional(angleUMaxDegrees)
        o["angle_v_max_deg"] = optional(angleVMaxDegrees)
        o["angle_u_mean_deg"] = optional(angleUMeanDegrees)
        o["angle_v_mean_deg"] = optional(angleVMeanDegrees)
        for (key, value) in MatrixComparison.overlapMetrics { o[key] = optional(value(self)) }
        o["control_density"] = .finite(controlDensity)
        o["alpha"] = .number(alpha)
        o["k"] = .int(k)
        o["rank"] = .int(rank)
        o["svd"] = .string(randomized ? "randomized" : "exact")
        if randomized {
            func estimate(_ e: SubspaceErrorEstimate?) -> JSONValue {
                guard let e else { return .null }
                return .object(JSONObject([("residual", .finite(e.residual)), ("gap", .finite(e.gap)),
                                           ("sin_bound", optional(e.sineBound))]))
            }
            o["svd_error"] = .object(JSONObject([
                ("base", estimate(subspaceErrorBase)), ("tuned", estimate(subspaceErrorTuned)),
                ("angle_error_bound_deg", optional(angleErrorBoundDegrees)),
            ]))
        }
        o["angle_note"] = angleNote.map { .string($0) } ?? .null
        o["energy_top_k"] = optional(energyTopK)
        o["delta_frobenius"] = .finite(deltaFrobenius)
        o["delta_spectral"] = .finite(deltaSpectral)
        o["stable_rank"] = optional(stableRank)
        o["base_frobenius"] = .finite(baseFrobenius)
        o["sigma_max_base"] = optional(singularValuesBase.first)
        o["sigma_max_tuned"] = optional(singularValuesTuned.first)
        o["principal_mask_size"] = .int(principalMaskSize)
        o["low_mask_size"] = .int(lowMaskSize)
        o["control_mask_size"] = .int(controlMaskSize)
        o["row_ratio"] = ratios(rowRatios)
        o["column_ratio"] = ratios(columnRatios)
        var all = JSONObject()
        for (name, check, holds) in boundChecks {
            let unmeasured = name.hasPrefix("wedin") && angleNote != nil
            var b = JSONObject([("measured", unmeasured ? .null : .finite(check.measured)), ("bound", optional(check.bound))])
            if name.hasPrefix("wedin") {
                b["vacuous"] = .bool(check.vacuous)
                b["gap"] = optional(bounds.wedinGap)
                b["gap_base"] = optional(bounds.baseGap)
            }
            b["holds"] = .bool(holds)
            all[name] = .object(b)
        }
        o["bounds"] = .object(all)
        o["angles_u_deg"] = .array(anglesU.map { .finite(degrees($0)) })
        o["angles_v_deg"] = .array(anglesV.map { .finite(degrees($0)) })
        return o
    }
}
