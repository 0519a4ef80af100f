using SsmGen.Training;

namespace SsmGen.Cuda;

/// <summary>
/// The copy of an <see cref="AdamW"/>'s moments on the GPU that a model's device training step updates. Like the
/// parameters, the host arrays stay what the optimizer shows: the device copy is downloaded when they are read
/// (checkpoints) and uploaded again after they were written (<see cref="AdamW.Restore"/>, a host step).
/// </summary>
internal sealed class DeviceMoments
{
    private readonly GpuModelRunner _runner;
    private bool _hostNewer = true, _deviceNewer;

    /// <summary>True once the copy is freed (its optimizer may since have moved to another model).</summary>
    public bool Released { get; private set; }

    public AdamW Optimizer { get; }
    public ulong First { get; }
    public ulong Second { get; }

    public DeviceMoments(GpuModelRunner runner, AdamW optimizer)
    {
        _runner = runner;
        Optimizer = optimizer;
        long bytes = 4L * optimizer.HostFirstMoments.Length;
        First = runner.Gpu.Allocate(bytes);
        try { Second = runner.Gpu.Allocate(bytes); }
        catch { runner.Gpu.Free(First); throw; }
        optimizer.DeviceCopy = this;
    }

    /// <summary>Before the host arrays are read: brings them up to date.</summary>
    public void MomentsRequested()
    {
        if (!_deviceNewer) return;
        _runner.Download(First, Optimizer.HostFirstMoments);
        _runner.Download(Second, Optimizer.HostSecondMoments);
        _deviceNewer = false;
    }

    /// <summary>After the host arrays were written: the device copy is stale.</summary>
    public void HostMomentsWritten() { _hostNewer = true; _deviceNewer = false; }

    /// <summary>Before a device step reads and writes the moments.</summary>
    public void BeforeDeviceStep()
    {
        if (_hostNewer)
        {
            _runner.Upload(Optimizer.HostFirstMoments, First);
            _runner.Upload(Optimizer.HostSecondMoments, Second);
        }
        _hostNewer = false;
        _deviceNewer = true;
    }

    /// <summary>Brings the moments home and frees the device copy (another model takes the optimizer, or the model is disposed).</summary>
    public void Release()
    {
        if (Released) return;
        try { MomentsRequested(); }
        finally
        {
            Released = true;
            if (ReferenceEquals(Optimizer.DeviceCopy, this)) Optimizer.DeviceCopy = null;
            _runner.Gpu.Free(First);
            _runner.Gpu.Free(Second);
        }
    }
}
