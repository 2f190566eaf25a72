import PrecLabSupport

/// A dense float64 matrix stored column-major (Fortran order): element (i, j) lives at
/// `storage[i + j * rows]`.
///
/// Column-major is LAPACK's native layout, so the `LAPACKE_*_work` calls and CBLAS
/// products take the storage as it is, without the transpose copies LAPACKE makes for
/// row-major input. Tensors on disk are row-major; `init(rows:columns:rowMajor:)`
/// converts once. Masks, in contrast, are always indexed in row-major order
/// (`i * columns + j`), the order of the tensor bytes they describe.
public struct Matrix: Sendable, Equatable {
    public let rows: Int
    public let columns: Int
    /// Column-major elements, `rows * columns` of them.
    public var storage: [Double]

    /// A zero matrix.
    public init(rows: Int, columns: Int) {
        precondition(rows >= 0 && columns >= 0, "matrix dimensions must be non-negative")
        self.rows = rows
        self.columns = columns
        storage = Array(repeating: 0, count: rows * columns)
    }

    /// A matrix over column-major elements.
    public init(rows: Int, columns: Int, columnMajor: [Double]) {
        precondition(columnMajor.count == rows * columns, "element count does not match the shape")
        self.rows = rows
        self.columns = columns
        storage = columnMajor
    }

    /// A matrix from row-major elements (the order of a safetensors tensor).
    public init(rows: Int, columns: Int, rowMajor: [Double]) {
        precondition(rowMajor.count == rows * columns, "element count does not match the shape")
        self.init(rows: rows, columns: columns)
        rowMajor.withUnsafeBufferPointer { source in
            storage.withUnsafeMutableBufferPointer { target in
                for i in 0..<rows {
                    let rowStart = i * columns
                    for j in 0..<columns { target[i + j * rows] = source[rowStart + j] }
                }
            }
        }
    }

    /// A matrix whose row-major element `index` is `element(index)`; used to decode
    /// low-precision tensors straight into column-major storage.
    public init(rows: Int, columns: Int, rowMajorElement element: (Int) -> Double) {
        self.init(rows: rows, columns: columns)
        storage.withUnsafeMutableBufferPointer { target in
            for i in 0..<rows {
                let rowStart = i * columns
                for j in 0..<columns { target[i + j * rows] = element(rowStart + j) }
            }
        }
    }

    /// The n×n identity.
    public static func identity(_ n: Int) -> Matrix {
        var result = Matrix(rows: n, columns: n)
        for i in 0..<n { result.storage[i + i * n] = 1 }
        return result
    }

    /// A diagonal rows×columns matrix with `diagonal` on its main diagonal.
    public static func diagonal(rows: Int, columns: Int, _ diagonal: [Double]) -> Matrix {
        precondition(diagonal.count <= min(rows, columns), "too many diagonal entries")
        var result = Matrix(rows: rows, columns: columns)
        for (i, value) in diagonal.enumerated() { result.storage[i + i * rows] = value }
        return result
    }

    public var elementCount: Int { rows * columns }
    public var isEmpty: Bool { rows == 0 || columns == 0 }

    public subscript(row: Int, column: Int) -> Double {
        get { storage[row + column * rows] }
        set { storage[row + column * rows] = newValue }
    }

    /// The elements in row-major order.
    public var rowMajorElements: [Double] {
        var result = [Double](repeating: 0, count: elementCount)
        for i in 0..<rows {
            for j in 0..<columns { result[i * columns + j] = storage[i + j * rows] }
        }
        return result
    }

    public var transposed: Matrix {
        Matrix(rows: columns, columns: rows, rowMajor: storage)
    }

    /// Column `j` as an array.
    public func column(_ j: Int) -> [Double] {
        Array(storage[(j * rows)..<((j + 1) * rows)])
    }

    /// The first `count` columns (contiguous in column-major storage).
    public func leadingColumns(_ count: Int) -> Matrix {
        precondition(count >= 0 && count <= columns, "column count out of range")
        return Matrix(rows: rows, columns: count, columnMajor: Array(storage[0..<(rows * count)]))
    }

    /// Whether every element is finite (LAPACK's SVD may not terminate on NaN).
    public var isFinite: Bool {
        storage.withUnsafeBufferPointer { buffer in
            for value in buffer where !value.isFinite { return false }
            return true
        }
    }

    /// Elementwise difference `self - other`.
    public static func - (lhs: Matrix, rhs: Matrix) -> Matrix {
        precondition(lhs.rows == rhs.rows && lhs.columns == rhs.columns, "shape mismatch")
        var result = lhs
        result.storage.withUnsafeMutableBufferPointer { target in
            rhs.storage.withUnsafeBufferPointer { source in
                for index in 0..<target.count { target[index] -= source[index] }
            }
        }
        return result
    }

    /// Elementwise sum.
    public static func + (lhs: Matrix, rhs: Matrix) -> Matrix {
        precondition(lhs.rows == rhs.rows && lhs.columns == rhs.columns, "shape mismatch")
        var result = lhs
        for index in 0..<result.storage.count { result.storage[index] += rhs.storage[index] }
        return result
    }

    /// Every element multiplied by `factor`.
    public static func * (factor: Double, matrix: Matrix) -> Matrix {
        Matrix(rows: matrix.rows, columns: matrix.columns, columnMajor: matrix.storage.map { factor * $0 })
    }

    /// The Frobenius norm, accumulated with scaling so huge or tiny entries neither
    /// overflow nor underflow (as LAPACK's dnrm2 does).
    public var frobeniusNorm: Double { scaledNorm(storage) }
}

/// The Euclidean norm of `values`, immune to overflow and underflow: the sum of
/// squares is kept relative to the largest magnitude seen so far.
public func scaledNorm(_ values: [Double]) -> Double {
    var scale = 0.0
    var sumOfSquares = 1.0
    for value in values where value != 0 {
        let magnitude = abs(value)
        if magnitude > scale {
            let ratio = scale / magnitude
            sumOfSquares = 1 + sumOfSquares * ratio * ratio
            scale = magnitude
        } else {
            let ratio = magnitude / scale
            sumOfSquares += ratio * ratio
        }
    }
    return scale * sumOfSquares.squareRoot()
}
