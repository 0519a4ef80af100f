namespace SsmGen.Cuda;

/// <summary>
/// A GPU model's device copy of one streaming state (<see cref="SsmState"/>), for Step on the device. One stream is
/// resident at a time: stepping another stream first brings the resident one home, then uploads the new one; a
/// stream whose <see cref="SsmState.Values"/> are read comes home too (the caller may write the array). Layout and
/// size are the host's, so moving a stream is one copy each way.
/// </summary>
internal sealed class DeviceStateSlot
{
    private readonly GpuModelRunner _runner;
    private readonly int _floats;
    private SsmState? _resident;
    private bool _released;

    public ulong Address { get; }

    public DeviceStateSlot(GpuModelRunner runner, int floats)
    {
        _runner = runner;
        _floats = floats;
        Address = runner.Gpu.Allocate(4L * Math.Max(floats, 1));
    }

    /// <summary>The device address holding <paramref name="state"/>'s values, uploading them unless they are there already.</summary>
    public ulong Acquire(SsmState state)
    {
        ObjectDisposedException.ThrowIf(_released, this);
        if (state.Size != _floats) throw new ArgumentException($"State has {state.Size} values; this model's state has {_floats}.", nameof(state));
        if (ReferenceEquals(_resident, state)) return Address;
        if (_resident is not null) BringHome(_resident);
        _runner.Upload(state.HostValues, Address);
        _resident = state;
        state.Slot = this;
        return Address;
    }

    /// <summary>Downloads the resident stream into its host array; from then on the host array is the newest.</summary>
    public void BringHome(SsmState state)
    {
        if (!ReferenceEquals(_resident, state)) return;
        try { _runner.Download(Address, state.HostValues); }
        finally { Detach(); }
    }

    /// <summary>Drops the device copy without reading it (the stream is being reset).</summary>
    public void Forget(SsmState state)
    {
        if (ReferenceEquals(_resident, state)) Detach();
    }

    private void Detach()
    {
        if (_resident is not null) _resident.Slot = null;
        _resident = null;
    }

    /// <summary>Brings the resident stream home (unless the device has failed or is gone) and frees the copy.</summary>
    public void Release()
    {
        if (_released) return;
        try { if (_resident is not null) BringHome(_resident); }
        catch (Exception e) when (e is ObjectDisposedException or CudaException) { Detach(); }
        finally
        {
            _released = true;
            _runner.Gpu.Free(Address);
        }
    }
}
