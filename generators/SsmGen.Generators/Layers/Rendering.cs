using System.Collections.Generic;
using System.Linq;
using System.Text;
using SsmGen.Generators.Emitters;
using SsmGen.Generators.Model;

namespace SsmGen.Generators.Layers;

/// <summary>A kind's C# rendering (its &lt;Kind&gt;Emitter.cs): the block's buffers, passes and specialized kernels.</summary>
internal abstract class CpuRendering<TPlan> where TPlan : LayerPlan
{
    /// <summary>Fields of every block of the kind, and the scratch they share (once per model).</summary>
    public virtual void EmitFields(CodeWriter w, ModelPlan plan) { }
    /// <summary>The constructor lines allocating those fields.</summary>
    public virtual void EmitAllocations(CodeWriter w, ModelPlan plan) { }
    /// <summary>The block's forward, backward and step methods.</summary>
    public abstract void EmitLayer(CodeWriter w, ModelPlan plan, TPlan l);
    /// <summary>Kernels specialized to the kind's sizes, each variant once per model.</summary>
    public virtual void EmitKernels(CodeWriter w, ModelPlan plan) { }
    /// <summary>A statement the step runs on a stream's first token (t == 0), once per model.</summary>
    public virtual string? StreamStart => null;
    /// <summary>Members the step's statements call, once per model.</summary>
    public virtual void EmitStepHelpers(CodeWriter w, ModelPlan plan) { }
}

/// <summary>A kind's CUDA rendering (its Cuda&lt;Kind&gt;Emitter.cs): kernels, device buffers and the block's launches.</summary>
internal abstract class GpuRendering<TPlan> where TPlan : LayerPlan
{
    /// <summary>The kernels of every variant the model uses (nothing when it has no block of the kind).</summary>
    public abstract void EmitKernels(StringBuilder cu, ModelPlan plan, List<string> names);
    /// <summary>Device buffers of one block, kept from forward to backward: (field, size in floats as a C# expression).</summary>
    public abstract IEnumerable<(string Field, string Floats)> Buffers(TPlan l);
    /// <summary>Device scratch the kind's blocks share (training-only where flagged).</summary>
    public virtual IEnumerable<(string Field, string Floats, bool Training)> Scratch(ModelPlan plan) => Enumerable.Empty<(string, string, bool)>();
    /// <summary>The widest row the shared column-reduction scratch must hold for this kind's blocks.</summary>
    public virtual int MaxColumnWidth(ModelPlan plan) => 1;
    /// <summary>The widest of the step's scratch rows for this kind's blocks.</summary>
    public virtual int StepWidth(ModelPlan plan) => MaxColumnWidth(plan);
    /// <summary>Why a block cannot run on a GPU (the model then runs on the CPU), one reason per block.</summary>
    public virtual IEnumerable<string> Unsupported(ModelPlan plan) => Enumerable.Empty<string>();
    /// <summary>Members of the device path the launches call, once per model holding such a block.</summary>
    public virtual void EmitHelpers(CodeWriter w, ModelPlan plan) { }
    public abstract void EmitForward(CodeWriter w, ModelPlan plan, TPlan l);
    public abstract void EmitBackward(CodeWriter w, ModelPlan plan, TPlan l);
    public abstract void EmitStep(CodeWriter w, ModelPlan plan, TPlan l);
}
