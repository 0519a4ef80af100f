using SsmGen.Distributed;

namespace SsmGen.Training;

/// <summary>
/// All-reduces a model's gradients on a thread of its own while the backward goes on: each time the backward reports
/// (<see cref="ISsmModel.GradientsFinal"/>) that the gradients from some offset on are final, the newly final range is
/// scaled and summed over the ranks, in buckets of at most <see cref="Trainer.GradientBucket"/>, from the end of the
/// buffer toward its start. Every rank's backward reports the same offsets, so every rank issues the same collectives
/// in the same order; each value is still summed in rank order, so the result is bit for bit that of all-reducing
/// after the backward. Nothing is allocated per step. Its thread lives as long as the process (it waits, idle,
/// between steps).
/// </summary>
internal sealed class OverlappedAllReduce
{
    private readonly ISsmModel _model;
    private readonly ICollective _collective;
    private readonly Thread _thread;
    private readonly object _gate = new();
    private float _scale;
    // The offsets the backward reported, in order (each below the one before), and how many have been reduced. Every
    // reported range is reduced on its own, whenever this thread gets to it, so the collectives do not depend on timing.
    private int[] _reports = new int[16];
    private int _reported, _reduced, _length;
    private Exception? _error;

    public OverlappedAllReduce(ISsmModel model, ICollective collective)
    {
        _model = model;
        _collective = collective;
        _thread = new Thread(Loop) { IsBackground = true, Name = "SsmGen gradient all-reduce" };
        _thread.Start();
    }

    /// <summary>Before the backward: the gradients will be multiplied by <paramref name="scale"/> before they are summed.</summary>
    public void Begin(float scale)
    {
        lock (_gate)
        {
            _scale = scale;
            _length = _model.Gradients.Length;
            _reported = _reduced = 0; // after a failure, Finish keeps throwing it
        }
    }

    /// <summary>The backward's report (called on its thread): [from, end) is final.</summary>
    public void Final(int from)
    {
        lock (_gate)
        {
            if (from >= (_reported == 0 ? _length : _reports[_reported - 1])) return;
            if (_reported == _reports.Length) Array.Resize(ref _reports, 2 * _reports.Length); // grows once, to the model's number of blocks
            _reports[_reported++] = from;
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>After the backward: waits until every gradient is reduced; throws what the reducing thread met.</summary>
    public void Finish()
    {
        Final(0); // a model that reported nothing (or not down to 0) is reduced whole here
        lock (_gate)
        {
            while (_reduced < _reported && _error is null) Monitor.Wait(_gate);
            if (_error is not null) throw new InvalidOperationException($"All-reducing the gradients failed: {_error.Message}", _error);
        }
    }

    /// <summary>
    /// After a backward that threw: waits for the ranges already handed over (the other ranks reduce them too), so that
    /// nothing reduces the gradients once the next step reuses them. The job itself is likely lost: see the exception.
    /// </summary>
    public void Abandon()
    {
        lock (_gate)
        {
            while (_reduced < _reported && _error is null) Monitor.Wait(_gate);
        }
    }

    private void Loop()
    {
        while (true)
        {
            int from, to;
            float scale;
            lock (_gate)
            {
                while (_reduced == _reported) Monitor.Wait(_gate);
                (from, to, scale) = (_reports[_reduced], _reduced == 0 ? _length : _reports[_reduced - 1], _scale);
            }
            try
            {
                // from the end of the range toward its start, one bucket at a time
                for (int end = to; end > from;)
                {
                    int start = Math.Max(from, end - Trainer.GradientBucket);
                    var g = _model.Gradients.Slice(start, end - start);
                    System.Numerics.Tensors.TensorPrimitives.Multiply(g, scale, g);
                    _collective.AllReduceSum(g);
                    end = start;
                }
                lock (_gate)
                {
                    _reduced++;
                    Monitor.PulseAll(_gate);
                }
            }
            catch (Exception e)
            {
                lock (_gate)
                {
                    _error = e;
                    Monitor.PulseAll(_gate);
                }
                return;
            }
        }
    }
}
