import PrecLabFormats
import PrecLabSupport

extension ReplayResult {
    /// The JSON document of `preclab replay --json`.
    public func json(source: String? = nil) -> JSONValue {
        var root = JSONObject()
        root["preclab_version"] = .string(precLabVersion)
        if let source { root["source"] = .string(source) }
        root["dtype"] = .string(configuration.format.name)
        root["rounding"] = .string(configuration.rounding.mode.rawValue)
        root["flush_subnormals"] = .bool(configuration.rounding.flushSubnormals)
        root["saturate"] = .bool(configuration.rounding.saturate)
        root["seed"] = .integer(Int64(bitPattern: configuration.seed))
        root["steps"] = .int(steps)
        root["first_step"] = firstStep.map { .integer(Int64(bitPattern: $0)) } ?? .null
        root["last_step"] = lastStep.map { .integer(Int64(bitPattern: $0)) } ?? .null
        root["policies"] = .array(configuration.policies.map { .string($0.rawValue) })
        root["null_model"] = configuration.nullModel.map { .string($0.rawValue) } ?? .null
        root["signed_zero_changes"] = .bool(configuration.signedZeroChanges)
        root["low_magnitude_alphas"] = .array(configuration.lowMagnitudeAlphas.map { .finite($0) })
        root["histogram_bins"] = .array(VisibilityHistogram.labels.map { .string($0) })
        root["magnitude_bins"] = .array(MagnitudeBins.labels.map { .string($0) })
        root["final_verified"] = .bool(finalVerified)
        root["finl_mismatches"] = finalMismatches.map(finalMismatchesJSON) ?? .null
        root["scale"] = .finite(Double(configuration.scale))
        root["warnings"] = .array(warnings.map { .string($0) })
        root["tensors"] = .array(tensors.map { tensorJSON($0) })

        var total = JSONObject()
        total["params"] = .int(params)
        total["true_changed"] = .int(trueChanged)
        total["true_sparsity"] = .finite(params == 0 ? 1 : 1 - Double(trueChanged) / Double(params))
        total["nan_updates"] = .int(nanUpdates)
        total["inf_updates"] = .int(infiniteUpdates)
        total["histogram"] = .array(totalHistogram.map { .int($0) })
        total["magnitude_histogram"] = .array(totalMagnitudeHistogram.map { .int($0) })
        var totalPolicies = JSONObject()
        for policy in configuration.policies {
            totalPolicies[policy.rawValue] = policyJSON(self.total(policy), params: params)
        }
        total["policies"] = .object(totalPolicies)
        if let null = totalNullModel { total["null_permute"] = nullJSON(null, params: params) }
        if configuration.nullModel != nil {
            total["null"] = nullPoliciesJSON(configuration.policies.compactMap { policy in
                totalNull(policy).map { (policy, $0) }
            }, params: params)
        }
        root["total"] = .object(total)

        root["curve"] = .array(curve.map { point in
            var entry = JSONObject()
            entry["step"] = .integer(Int64(bitPattern: point.step))
            entry["true_changed"] = .int(point.totalTrueChanged)
            var visible = JSONObject()
            for policy in configuration.policies { visible[policy.rawValue] = .int(point.totalVisible(policy)) }
            entry["visible_changed"] = .object(visible)
            return .object(entry)
        })
        if let stepViews { root["step_views"] = stepViewsJSON(stepViews) }
        return .object(root)
    }

    private func finalMismatchesJSON(_ mismatches: FinalMismatches) -> JSONValue {
        var entry = JSONObject()
        entry["count"] = .int(mismatches.count)
        entry["max_ulp_distance"] = .integer(Int64(clamping: mismatches.maxULPDistance))
        if let first = mismatches.first {
            var example = JSONObject()
            example["tensor"] = .string(first.tensor)
            example["index"] = .int(first.index)
            example["position"] = .string(first.position)
            example["replayed"] = .finite(Double(first.replayed))
            example["recorded"] = .finite(Double(first.recorded))
            example["replayed_bits"] = .string("0x" + hex(first.replayed.bitPattern))
            example["recorded_bits"] = .string("0x" + hex(first.recorded.bitPattern))
            entry["first"] = .object(example)
        } else {
            entry["first"] = .null
        }
        return .object(entry)
    }

    private func stepViewsJSON(_ views: StepViews) -> JSONValue {
        var entry = JSONObject()
        entry["steps"] = .array(views.steps.map { .integer(Int64(bitPattern: $0)) })
        var changed = JSONObject()
        for policy in configuration.policies {
            changed[policy.rawValue] = .array((views.changedInStep[policy] ?? []).map { .int($0) })
        }
        entry["changed_in_step"] = .object(changed)
        entry["pure_ratio_histogram"] = views.pureRatioHistogram.map { .array($0.map { .int($0) }) } ?? .null
        entry["pure_ratio_changed"] = views.pureRatioChanged.map { .array($0.map { .int($0) }) } ?? .null
        entry["pure_ratio_skipped"] = .int(views.pureRatioSkipped)
        return .object(entry)
    }

    private func tensorJSON(_ tensor: TensorReplayResult) -> JSONValue {
        var entry = JSONObject()
        entry["name"] = .string(tensor.tensor.name)
        entry["shape"] = .array(tensor.tensor.shape.map { .int($0) })
        entry["params"] = .int(tensor.params)
        entry["true_changed"] = .int(tensor.trueChanged)
        entry["true_sparsity"] = .finite(tensor.trueSparsity)
        entry["nan_updates"] = .int(tensor.nanUpdates)
        entry["inf_updates"] = .int(tensor.infiniteUpdates)
        entry["histogram"] = .array(tensor.histogram.map { .int($0) })
        entry["magnitude_histogram"] = .array(tensor.magnitudeHistogram.map { .int($0) })
        var policies = JSONObject()
        for policy in configuration.policies {
            if let metrics = tensor.policies[policy] {
                policies[policy.rawValue] = policyJSON(metrics, params: tensor.params)
            }
        }
        entry["policies"] = .object(policies)
        if let null = tensor.nullModel { entry["null_permute"] = nullJSON(null, params: tensor.params) }
        if let nullPolicies = tensor.nullPolicies {
            entry["null"] = nullPoliciesJSON(configuration.policies.compactMap { policy in
                nullPolicies[policy].map { (policy, $0) }
            }, params: tensor.params)
        }
        return .object(entry)
    }

    private func policyJSON(_ metrics: PolicyMetrics, params: Int) -> JSONValue {
        var entry = JSONObject()
        entry["visible_changed"] = .int(metrics.visibleChanged)
        entry["sparsity"] = .finite(metrics.sparsity(params: params))
        entry["hidden"] = .int(metrics.hidden)
        entry["hidden_never_left"] = .int(metrics.hiddenNeverLeft)
        entry["hidden_returned"] = .int(metrics.hiddenReturned)
        entry["hidden_swamped"] = .int(metrics.hiddenSwamped)
        entry["spurious"] = .int(metrics.spurious)
        entry["relative_error"] = .finite(metrics.relativeError)
        entry["non_finite_weights"] = .int(metrics.nonFiniteWeights)
        entry["visible_by_bin"] = .array(metrics.visibleByBin.map { .int($0) })
        entry["visible_by_magnitude"] = .array(metrics.visibleByMagnitude.map { .int($0) })
        entry["low_magnitude_overlap"] = .array(metrics.lowMagnitudeOverlap.map { .finite($0) })
        entry["low_magnitude_overlap_random"] = .array(configuration.lowMagnitudeAlphas.map { .finite($0) })
        entry["low_magnitude_overlap_magnitude"] = .array(metrics.lowMagnitudeOverlapMagnitude.map { .finite($0) })
        return .object(entry)
    }

    /// The `null` object: the null model's kind and every policy's metrics on it.
    private func nullPoliciesJSON(_ metrics: [(ReplayPolicy, PolicyMetrics)], params: Int) -> JSONValue {
        var policies = JSONObject()
        for (policy, entry) in metrics { policies[policy.rawValue] = policyJSON(entry, params: params) }
        return .object(JSONObject([("kind", configuration.nullModel.map { .string($0.rawValue) } ?? .null),
                                   ("policies", .object(policies))]))
    }

    private func nullJSON(_ null: NullModelMetrics, params: Int) -> JSONValue {
        var entry = JSONObject()
        entry["visible_changed"] = .int(null.visibleChanged)
        entry["sparsity"] = .finite(null.sparsity(params: params))
        entry["low_magnitude_overlap"] = .array(null.lowMagnitudeOverlap.map { .finite($0) })
        entry["visible_by_magnitude"] = .array(null.visibleByMagnitude.map { .int($0) })
        return .object(entry)
    }

    /// Index of α = 0.5 among the configured alphas (the tables' headline overlap), if any.
    public var headlineAlphaIndex: Int? {
        configuration.lowMagnitudeAlphas.firstIndex(of: 0.5)
    }

    /// The CSV of `preclab replay --csv`: a row per tensor and policy, then a row per
    /// policy for the total (tensor "TOTAL"). Warnings repeat in a last column so that
    /// every row carries them.
    public func csvRows() -> (header: [String], rows: [[String]]) {
        var header = ["tensor", "shape", "params", "policy", "true_changed", "visible_changed",
                      "sparsity", "true_sparsity", "hidden", "hidden_never_left", "hidden_returned",
                      "hidden_swamped", "spurious", "relative_error", "non_finite_weights",
                      "nan_updates", "inf_updates"]
        header += configuration.lowMagnitudeAlphas.map { "low_overlap_\(compactDecimal($0))" }
        header += configuration.lowMagnitudeAlphas.map { "low_overlap_magnitude_\(compactDecimal($0))" }
        header += ["null_visible_changed", "dtype", "rounding", "steps", "warnings"]
        let warningText = warnings.joined(separator: "; ")
        var rows: [[String]] = []
        func row(name: String, shape: String, params: Int, trueChanged: Int, nan: Int, inf: Int,
                 policy: ReplayPolicy, metrics: PolicyMetrics, null: NullModelMetrics?) -> [String] {
            var fields = [name, shape, String(params), policy.rawValue, String(trueChanged),
                          String(metrics.visibleChanged), compactDecimal(metrics.sparsity(params: params)),
                          compactDecimal(params == 0 ? 1 : 1 - Double(trueChanged) / Double(params)),
                          String(metrics.hidden), String(metrics.hiddenNeverLeft), String(metrics.hiddenReturned),
                          String(metrics.hiddenSwamped), String(metrics.spurious), compactDecimal(metrics.relativeError),
                          String(metrics.nonFiniteWeights), String(nan), String(inf)]
            fields += metrics.lowMagnitudeOverlap.map(compactDecimal)
            fields += metrics.lowMagnitudeOverlapMagnitude.map(compactDecimal)
            fields.append(policy == .master ? null.map { String($0.visibleChanged) } ?? "" : "")
            fields += [configuration.format.name, configuration.rounding.mode.rawValue, String(steps), warningText]
            return fields
        }
        for tensor in tensors {
            let shape = tensor.tensor.shape.map(String.init).joined(separator: "x")
            for policy in configuration.policies {
                guard let metrics = tensor.policies[policy] else { continue }
                rows.append(row(name: tensor.tensor.name, shape: shape, params: tensor.params,
                                trueChanged: tensor.trueChanged, nan: tensor.nanUpdates,
                                inf: tensor.infiniteUpdates, policy: policy, metrics: metrics,
                                null: tensor.nullModel))
            }
        }
        for policy in configuration.policies {
            rows.append(row(name: "TOTAL", shape: "", params: params, trueChanged: trueChanged,
                            nan: nanUpdates, inf: infiniteUpdates, policy: policy,
                            metrics: total(policy), null: totalNullModel))
        }
        return (header, rows)
    }
}
