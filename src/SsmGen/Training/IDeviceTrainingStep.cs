namespace SsmGen.Training;

/// <summary>
/// A model that can finish a classification training step where its parameters live: every generated model
/// implements it, and on a GPU device the loss, backward, clipping and AdamW run there, so a step moves only the
/// targets up and four numbers down. <see cref="Trainer"/> uses it by itself; nothing else needs to call it.
/// </summary>
public interface IDeviceTrainingStep
{
    /// <summary>True for a training model on a GPU device.</summary>
    bool TrainsOnDevice { get; }

    /// <summary>
    /// After a training Forward: mean softmax cross-entropy of its outputs against <paramref name="targets"/> (one per
    /// output row), gradients zeroed and recomputed from it, clipped to global norm <paramref name="maxGradNorm"/>, one
    /// AdamW update with every learning rate scaled by <paramref name="lrScale"/>. The same step as the CPU Trainer's,
    /// guard included: when the loss or the norm is not finite the update writes nothing and the optimizer's step count
    /// stays; the caller sees it in the result.
    /// </summary>
    StepResult FinishTrainingStep(ReadOnlySpan<int> targets, AdamW optimizer, float lrScale, float maxGradNorm);
}
