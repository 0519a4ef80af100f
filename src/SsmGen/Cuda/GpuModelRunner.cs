using System.Runtime.InteropServices;
using SsmGen.Training;

namespace SsmGen.Cuda;

/// <summary>
/// The device side of one generated model: its module, the parameter and gradient arenas, one arena for
/// activations and scratch, and a pinned staging buffer for inputs and outputs. The host arrays of the model stay
/// what <c>Parameters</c> and <c>Gradients</c> show: a host view handed out is assumed written, and is uploaded
/// before the device next reads it; a device write is downloaded when the host view is next asked for.
/// One runner is used from one thread at a time, like the model that owns it.
/// </summary>
public sealed unsafe class GpuModelRunner : IDisposable
{
    private readonly float[] _hostParameters, _hostGradients;
    private readonly void* _staging;
    private readonly long _stagingBytes;
    private DeviceMoments? _moments;
    private DeviceStateSlot? _stateSlot;
    private bool _hostParametersWritten = true, _deviceParametersNewer, _hostGradientsWritten, _deviceGradientsNewer, _disposed;

    public ComputeDevice Device { get; }
    /// <summary>True once disposed (with the model): every device call then throws.</summary>
    public bool IsDisposed => _disposed;
    public GpuBackend Gpu { get; }
    public GpuModule Module { get; }
    /// <summary>Device address of the parameter arena (same layout as the host buffer).</summary>
    public ulong Parameters { get; }
    /// <summary>Device address of the gradient arena; 0 for an inference model.</summary>
    public ulong Gradients { get; }
    /// <summary>Device address of the activation and scratch arena.</summary>
    public ulong Activations { get; }

    public GpuModelRunner(ComputeDevice device, string source, string name, IReadOnlyList<string> kernels,
                          float[] hostParameters, float[] hostGradients, long activationBytes, long stagingBytes)
    {
        ArgumentNullException.ThrowIfNull(device);
        Gpu = device.Backend ?? throw new ArgumentException("A GPU model needs a GPU device (ComputeDevice.Cuda or ComputeDevice.CudaEmulation).", nameof(device));
        Device = device;
        Module = device.Module(source, name, kernels);
        _hostParameters = hostParameters;
        _hostGradients = hostGradients;
        try
        {
            Parameters = Gpu.Allocate(4L * hostParameters.Length);
            if (hostGradients.Length > 0) Gradients = Gpu.Allocate(4L * hostGradients.Length);
            Activations = Gpu.Allocate(activationBytes);
            _stagingBytes = Math.Max(stagingBytes, 16);
            _staging = Gpu.AllocatePinned(_stagingBytes);
        }
        catch
        {
            FreeAll();
            throw;
        }
    }

    /// <summary>Before handing out the host parameters: brings them up to date and assumes the caller writes them.</summary>
    public void HostParametersRequested()
    {
        if (_deviceParametersNewer) Download(Parameters, _hostParameters);
        _deviceParametersNewer = false;
        _hostParametersWritten = true;
    }

    /// <summary>After the host parameters were overwritten as a whole (Initialize): upload them, download nothing.</summary>
    public void HostParametersOverwritten()
    {
        _deviceParametersNewer = false;
        _hostParametersWritten = true;
    }

    /// <summary>Before handing out the host gradients, likewise.</summary>
    public void HostGradientsRequested()
    {
        if (_deviceGradientsNewer) Download(Gradients, _hostGradients);
        _deviceGradientsNewer = false;
        _hostGradientsWritten = true;
    }

    /// <summary>Before kernels read parameters (and, for a backward, gradients): uploads what the host may have written.</summary>
    public void BeforeDeviceUse(bool gradients)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_hostParametersWritten) Upload(_hostParameters, Parameters);
        _hostParametersWritten = false;
        if (gradients && _hostGradientsWritten) Upload(_hostGradients, Gradients);
        if (gradients) _hostGradientsWritten = false;
    }

    /// <summary>After kernels wrote gradients.</summary>
    public void GradientsWrittenOnDevice() => _deviceGradientsNewer = true;

    /// <summary>After kernels wrote parameters (a device optimizer step).</summary>
    public void ParametersWrittenOnDevice() => _deviceParametersNewer = true;

    /// <summary>
    /// Before a device AdamW update: the optimizer's moments on the device (allocated on first use, uploaded when the
    /// host copy is newer; an optimizer used by another model first comes home from there), its step counted, and the
    /// settings the update kernel takes. The caller launches the update and then calls <see cref="ParametersWrittenOnDevice"/>.
    /// </summary>
    public AdamWStep BeginAdamWStep(AdamW optimizer, float lrScale)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (optimizer.HostFirstMoments.Length != _hostParameters.Length)
            throw new ArgumentException($"The optimizer holds moments for {optimizer.HostFirstMoments.Length} parameters; this model has {_hostParameters.Length}.", nameof(optimizer));
        if (!float.IsFinite(lrScale) || lrScale < 0) throw new ArgumentOutOfRangeException(nameof(lrScale), lrScale, "The learning-rate scale must be finite and not negative.");
        if (_moments is null || _moments.Released || _moments.Optimizer != optimizer)
        {
            optimizer.DeviceCopy?.Release();
            _moments?.Release();
            _moments = null;
            _moments = new DeviceMoments(this, optimizer);
        }
        _moments.BeforeDeviceStep();
        var (c1, c2) = optimizer.BeginStep();
        GroupSettings g0 = optimizer[OptimizerGroup.Default], g1 = optimizer[OptimizerGroup.NoDecay], g2 = optimizer[OptimizerGroup.Ssm];
        return new AdamWStep(_moments.First, _moments.Second, optimizer.Beta1, optimizer.Beta2, optimizer.Epsilon, c1, c2,
            g0.LearningRate * lrScale, g0.WeightDecay, g1.LearningRate * lrScale, g1.WeightDecay, g2.LearningRate * lrScale, g2.WeightDecay);
    }

    /// <summary>
    /// After a device AdamW update that returned without writing (its loss or norm was not finite): the step that
    /// <see cref="BeginAdamWStep"/> counted is taken back, so the bias corrections continue as if it never ran.
    /// </summary>
    public void AdamWStepNotApplied(AdamW optimizer)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        if (_moments is null || _moments.Optimizer != optimizer)
            throw new InvalidOperationException("This optimizer did not begin a device step on this model.");
        optimizer.UncountStep();
    }

    /// <summary>
    /// Device address of a stream's values for a Step on the device (a copy of the state's size, allocated on first
    /// use): uploaded unless this stream is the one already there; a stream there before goes home first.
    /// </summary>
    public ulong StateOnDevice(SsmState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        ObjectDisposedException.ThrowIf(_disposed, this);
        _stateSlot ??= new DeviceStateSlot(this, state.Size);
        return _stateSlot.Acquire(state);
    }

    /// <summary>Zero gradients on both sides.</summary>
    public void ZeroGradients()
    {
        Array.Clear(_hostGradients);
        if (Gradients != 0) Gpu.Clear(Gradients, 4L * _hostGradients.Length);
        _hostGradientsWritten = _deviceGradientsNewer = false;
    }

    /// <summary>Host floats to device memory through the pinned buffer, in pieces if they exceed it.</summary>
    public void Upload(ReadOnlySpan<float> source, ulong destination) => Upload(MemoryMarshal.AsBytes(source), destination);

    /// <summary>Host ints to device memory.</summary>
    public void Upload(ReadOnlySpan<int> source, ulong destination) => Upload(MemoryMarshal.AsBytes(source), destination);

    private void Upload(ReadOnlySpan<byte> bytes, ulong destination)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        for (long done = 0; done < bytes.Length;)
        {
            int n = (int)Math.Min(_stagingBytes, bytes.Length - done);
            bytes.Slice((int)done, n).CopyTo(new Span<byte>(_staging, n));
            Gpu.CopyToDevice(destination + (ulong)done, _staging, n);
            done += n;
        }
    }

    /// <summary>Device floats to host memory through the pinned buffer (waits for the kernels before it).</summary>
    public void Download(ulong source, Span<float> destination)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var bytes = MemoryMarshal.AsBytes(destination);
        for (long done = 0; done < bytes.Length;)
        {
            int n = (int)Math.Min(_stagingBytes, bytes.Length - done);
            Gpu.CopyToHost(_staging, source + (ulong)done, n);
            new ReadOnlySpan<byte>(_staging, n).CopyTo(bytes.Slice((int)done, n));
            done += n;
        }
    }

    private void FreeAll()
    {
        // Each free on its own: one failing (a device already disposed, a faulted context) does not leak the others.
        try { if (Parameters != 0) Gpu.Free(Parameters); } catch (Exception e) when (e is ObjectDisposedException or CudaException) { }
        try { if (Gradients != 0) Gpu.Free(Gradients); } catch (Exception e) when (e is ObjectDisposedException or CudaException) { }
        try { if (Activations != 0) Gpu.Free(Activations); } catch (Exception e) when (e is ObjectDisposedException or CudaException) { }
        try { if (_staging != null) Gpu.FreePinned(_staging); } catch (Exception e) when (e is ObjectDisposedException or CudaException) { }
    }

    public void Dispose()
    {
        if (_disposed) return;
        // The optimizer outlives the model: its moments come home first (unless the device has failed or was disposed first).
        try { _moments?.Release(); } catch (Exception e) when (e is ObjectDisposedException or CudaException) { }
        _moments = null;
        // So does a stream stepped on the device.
        try { _stateSlot?.Release(); } catch (Exception e) when (e is ObjectDisposedException or CudaException) { }
        _stateSlot = null;
        _disposed = true;
        FreeAll();
    }
}

/// <summary>
/// What a device AdamW update needs: the moments' device addresses, β₁, β₂, ε, the bias corrections of this step
/// (1/(1 − βᵗ)), and per optimizer group (Default, NoDecay, Ssm) the scheduled learning rate and the weight decay.
/// </summary>
public readonly record struct AdamWStep(ulong FirstMoments, ulong SecondMoments, float Beta1, float Beta2, float Epsilon, float C1, float C2,
    float LearningRate0, float WeightDecay0, float LearningRate1, float WeightDecay1, float LearningRate2, float WeightDecay2);
