import PrecLabSupport
import XCTest

/// The typed errors keep the located message the CLI prints and expose its parts.
final class PrecLabErrorTests: XCTestCase {
    func testLocatedDataErrorsKeepTheirFieldsAndWording() {
        let error = PrecLabError.badData(file: "a.safetensors", offset: 12, tensor: "w", "expected 8 bytes, found 3")
        guard case .malformed(let fault) = error else { return XCTFail("\(error)") }
        XCTAssertEqual(fault, DataFault(file: "a.safetensors", offset: 12, tensor: "w", expected: "expected 8 bytes, found 3"))
        XCTAssertEqual(error.description, "a.safetensors: at byte offset 12: tensor 'w': expected 8 bytes, found 3")
        XCTAssertEqual(PrecLabError.badData(file: "s.bin", "no records").description, "s.bin: no records")
        XCTAssertTrue(error.isDataError)
        XCTAssertTrue(PrecLabError.badData("free text").isDataError)
    }

    func testRequestErrorsAreNotDataErrorsAndNameNoOption() {
        let refusal = PrecLabError.outputRefused(path: "out.json", reason: .exists)
        XCTAssertFalse(refusal.isDataError)
        XCTAssertEqual(refusal.description, "out.json: already exists")
        XCTAssertFalse(PrecLabError.invalidArgument("unknown format 'x'").isDataError)
        for reason in [PrecLabError.OutputRefusal.exists, .isInput, .isDirectory, .notADirectory, .writtenTwice,
                       .missingDirectory] {
            let text = PrecLabError.outputRefused(path: "p", reason: reason).description
            XCTAssertTrue(text.hasPrefix("p: "), text)
            XCTAssertFalse(text.contains("--"), text)
        }
    }
}
