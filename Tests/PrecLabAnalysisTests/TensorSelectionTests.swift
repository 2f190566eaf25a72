import PrecLabAnalysis
import PrecLabSupport
import XCTest

final class TensorSelectionTests: XCTestCase {
    /// A match anywhere in the name selects it (as grep does); anchors restrict.
    func testSearchesAnywhereInTheName() throws {
        let layers = try TensorSelection(pattern: "layers\\.2\\.")
        XCTAssertTrue(layers.includes("model.layers.2.mlp.up_proj.weight"))
        XCTAssertFalse(layers.includes("model.layers.12.mlp.up_proj.weight"))
        let anchored = try TensorSelection(pattern: "^a$")
        XCTAssertTrue(anchored.includes("a"))
        XCTAssertFalse(anchored.includes("ab"))
        XCTAssertTrue(TensorSelection.all.includes(""))
        XCTAssertNil(TensorSelection.all.pattern)
    }

    func testInvalidPatternIsAnInvalidArgument() {
        XCTAssertThrowsError(try TensorSelection(pattern: "(")) {
            guard case PrecLabError.invalidArgument(let message) = $0 else { return XCTFail("\($0)") }
            XCTAssertTrue(message.contains("not a valid regular expression"), message)
        }
    }
}
