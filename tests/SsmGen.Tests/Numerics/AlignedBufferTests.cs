using System.Reflection;
using SsmGen.Numerics;
using Xunit;

namespace SsmGen.Tests.Numerics;

public unsafe class AlignedBufferTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(15)]
    [InlineData(17)]
    [InlineData(1000)]
    [InlineData(1 << 20)]
    public void StartsOnACacheLineAndHoldsExactlyItsLength(int length)
    {
        for (int copy = 0; copy < 8; copy++) // successive allocations may land at different offsets of a line
        {
            var buffer = new AlignedBuffer(length);
            fixed (float* p = buffer) Assert.Equal(0, (long)p % 64);
            Assert.Equal(length, buffer.Length);
            Assert.Equal(length, buffer.Span.Length);
            buffer.AsSpan(length / 2)[0] = 2f;
            buffer[length - 1] = 3f; // the same element as the line above when length is 1
            Assert.Equal(3f, buffer.Span[length - 1]);
            Assert.Equal(length == 1 ? 3f : 2f, ((ReadOnlySpan<float>)buffer)[length / 2]);
            fixed (float* p = buffer) Assert.Equal(3f, p[length - 1]);
            Assert.Throws<IndexOutOfRangeException>(() => buffer[length]);
            Assert.Throws<ArgumentOutOfRangeException>(() => buffer.AsSpan(1, length));
        }
    }

    /// <summary>
    /// Buffers of a page or more made one after another start on different lines of the 4 KB page, far enough apart that
    /// a kernel reading one and writing the next at the same index does not see its loads match in-flight stores in
    /// their low twelve address bits (4K aliasing); small ones stay on a line without the page's slack.
    /// </summary>
    [Fact]
    public void SuccessiveLargeBuffersStartFarApartInThePage()
    {
        var offsets = new List<long>();
        var keep = new List<AlignedBuffer>();
        for (int i = 0; i < 16; i++)
        {
            var buffer = new AlignedBuffer(32 * 1024); // 128 KB, a multiple of the page like the FFT scratch
            keep.Add(buffer);
            fixed (float* p = buffer) { Assert.Equal(0, (long)p % 64); offsets.Add((long)p % 4096); }
        }
        for (int i = 1; i < offsets.Count; i++)
        {
            long apart = ((offsets[i] - offsets[i - 1]) % 4096 + 4096) % 4096;
            Assert.InRange(Math.Min(apart, 4096 - apart), 1024, 2048); // 2.6 KB one way, 1.4 KB the other
            Assert.NotEqual(0, apart % 512); // never a whole number of 512-byte rows apart
        }
        Assert.True(offsets.Distinct().Count() >= 8, $"only {offsets.Distinct().Count()} distinct page offsets");
        var small = new AlignedBuffer(100);
        fixed (float* p = small) Assert.Equal(0, (long)p % 64);
    }

    [Fact]
    public void EmptyAndNegativeLengths()
    {
        Assert.Equal(0, AlignedBuffer.Empty.Length);
        Assert.True(AlignedBuffer.Empty.Span.IsEmpty);
        fixed (float* p = AlignedBuffer.Empty) Assert.True(p == null);
        Assert.Throws<ArgumentOutOfRangeException>(() => new AlignedBuffer(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AlignedBuffer(AlignedBuffer.MaxLength + 1)); // before allocating anything
    }

    /// <summary>A generated training model keeps its activations and backward scratch in buffers that start on cache lines.</summary>
    [Fact]
    public void GeneratedModelBuffersStartOnCacheLines()
    {
        var model = new SeqClassifier(2, 40);
        var buffers = typeof(SeqClassifier).GetFields(BindingFlags.Instance | BindingFlags.NonPublic)
            .Where(f => f.FieldType == typeof(AlignedBuffer)).Select(f => (f.Name, Buffer: (AlignedBuffer)f.GetValue(model)!)).ToList();
        Assert.Contains(buffers, b => b.Name == "_l0X");
        Assert.Contains(buffers, b => b.Name == "_l3O"); // a block's (rows, 2H) projection output
        Assert.Contains(buffers, b => b.Name == "_dY"); // training-only scratch
        foreach (var (name, buffer) in buffers)
        {
            Assert.True(buffer.Length > 0, $"{name} is empty in a training model");
            fixed (float* p = buffer) Assert.True((long)p % 64 == 0, $"{name} starts {(long)p % 64} bytes into a line");
        }
    }
}
