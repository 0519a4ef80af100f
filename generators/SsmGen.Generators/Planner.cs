using System;
using System.Collections.Generic;
using System.Linq;
using SsmGen.Generators.Model;

namespace SsmGen.Generators;

/// <summary>
/// ModelSpec → ModelPlan: the parameter table with constant offsets, groups and initializations. The runtime's
/// Reference.ParameterLayout builds the same table from a ModelConfig; a test checks that they agree.
/// </summary>
internal static class Planner
{
    public static ModelPlan Plan(ModelSpec s)
    {
        var ps = new List<ParamPlan>();
        int offset = 0, maxWeights = 0;
        void Add(string name, string group, InitKind init, double arg, int layer, params int[] shape)
        {
            int len = 1;
            foreach (int d in shape) len *= d;
            ps.Add(new ParamPlan(name, EquatableArray.From(shape), offset, len, group, init, arg, layer));
            offset += len;
            // room for a transposed linear weight (an embedding table is never transposed)
            if (shape.Length == 2 && !(s.Vocab > 0 && offset == len)) maxWeights = Math.Max(maxWeights, len);
        }
        void Norm(string prefix, bool rms, int layer, int h)
        {
            Add(prefix + ".weight", "NoDecay", InitKind.One, 0, layer, h);
            if (!rms) Add(prefix + ".bias", "NoDecay", InitKind.Zero, 0, layer, h);
        }
        int h = s.DModel;
        bool mambaLayout = s.Layers.Items.All(l => l is MambaLayerSpec);
        bool finalRms = s.Layers.Items.All(l => l is MambaLayerSpec { Norm: 1 });
        var names = mambaLayout
            ? new ModelNames(s.Vocab > 0 ? "backbone.embeddings" : "backbone.encoder", "backbone.norm_f", "lm_head", DecoderBias: false, finalRms)
            : new ModelNames("encoder", "norm_f", "decoder", DecoderBias: true, finalRms);
        string layerRoot = mambaLayout ? "backbone.layers." : "layers.";
        double linearBound = 1 / Math.Sqrt(h);
        if (s.Vocab > 0) Add(names.Encoder + ".weight", "Default", InitKind.Normal, 1, -1, s.Vocab, h);
        else
        {
            Add(names.Encoder + ".weight", "Default", InitKind.Uniform, 1 / Math.Sqrt(s.Input), -1, h, s.Input);
            Add(names.Encoder + ".bias", "NoDecay", InitKind.Uniform, 1 / Math.Sqrt(s.Input), -1, h);
        }
        var layers = new List<LayerPlan>();
        for (int i = 0; i < s.Layers.Count; i++)
        {
            string p = layerRoot + i + ".";
            switch (s.Layers[i])
            {
                case S4DLayerSpec l:
                {
                    int m = l.N / 2;
                    Norm(p + "norm", false, i, h);
                    Add(p + "mixer.log_dt", "Ssm", InitKind.LogDt, 0, i, h);
                    Add(p + "mixer.log_A_real", "Ssm", InitKind.S4DA, 0, i, h, m);
                    Add(p + "mixer.A_imag", "Ssm", InitKind.S4DAImag, 0, i, h, m);
                    if (l.TrainB) Add(p + "mixer.B", "Ssm", InitKind.ComplexOne, 0, i, h, m, 2);
                    Add(p + "mixer.C", "Default", InitKind.ComplexNormal, 0, i, h, m, 2);
                    Add(p + "mixer.D", "NoDecay", InitKind.Normal, 1, i, h);
                    Add(p + "mixer.output_linear.weight", "Default", InitKind.Uniform, linearBound, i, 2 * h, h);
                    Add(p + "mixer.output_linear.bias", "NoDecay", InitKind.Uniform, linearBound, i, 2 * h);
                    layers.Add(new S4DLayerPlan(i, p, l));
                    break;
                }
                case MambaLayerSpec l:
                {
                    var plan = new MambaLayerPlan(i, p, l, h);
                    int e = plan.E, w = l.ConvWidth;
                    // PyTorch's defaults for Linear and Conv1d (uniform ±1/√fan_in), Mamba's for Δ, A and D.
                    Norm(p + "norm", plan.Rms, i, h);
                    Add(p + "mixer.in_proj.weight", "Default", InitKind.Uniform, linearBound, i, 2 * e, h);
                    Add(p + "mixer.conv1d.weight", "Default", InitKind.Uniform, 1 / Math.Sqrt(w), i, e, 1, w);
                    Add(p + "mixer.conv1d.bias", "NoDecay", InitKind.Uniform, 1 / Math.Sqrt(w), i, e);
                    Add(p + "mixer.x_proj.weight", "Default", InitKind.Uniform, 1 / Math.Sqrt(e), i, plan.Dbc, e);
                    Add(p + "mixer.dt_proj.weight", "Default", InitKind.Uniform, 1 / Math.Sqrt(plan.R), i, e, plan.R);
                    Add(p + "mixer.dt_proj.bias", "NoDecay", InitKind.MambaDtBias, 0, i, e);
                    Add(p + "mixer.A_log", "NoDecay", InitKind.MambaALog, 0, i, e, l.N);
                    Add(p + "mixer.D", "NoDecay", InitKind.One, 0, i, e);
                    Add(p + "mixer.out_proj.weight", "Default", InitKind.Uniform, 1 / Math.Sqrt(e), i, h, e);
                    layers.Add(plan);
                    break;
                }
                case RnnLayerSpec l:
                {
                    int hd = l.Hidden;
                    double bound = 1 / Math.Sqrt(hd); // PyTorch's RNN init, used for out_proj too
                    Norm(p + "norm", false, i, h);
                    Add(p + "mixer.weight_ih", "Default", InitKind.Uniform, bound, i, hd, h);
                    Add(p + "mixer.weight_hh", "Default", InitKind.Uniform, bound, i, hd, hd);
                    Add(p + "mixer.bias_ih", "NoDecay", InitKind.Uniform, bound, i, hd);
                    Add(p + "mixer.bias_hh", "NoDecay", InitKind.Uniform, bound, i, hd);
                    Add(p + "mixer.out_proj.weight", "Default", InitKind.Uniform, bound, i, h, hd);
                    Add(p + "mixer.out_proj.bias", "NoDecay", InitKind.Uniform, bound, i, h);
                    layers.Add(new RnnLayerPlan(i, p, l));
                    break;
                }
                case IdsLayerSpec l:
                {
                    Norm(p + "norm", false, i, h);
                    Add(p + "mixer.A.weight", "Default", InitKind.IdsTransition, 0, i, l.N * l.N, h);
                    Add(p + "mixer.A.bias", "NoDecay", InitKind.FilledWithPrevious, 0, i, l.N * l.N);
                    Add(p + "mixer.B.weight", "Default", InitKind.Uniform, linearBound, i, l.N, h);
                    Add(p + "mixer.C.weight", "Default", InitKind.Uniform, 1 / Math.Sqrt(l.N), i, h, l.N);
                    Add(p + "mixer.C.bias", "NoDecay", InitKind.Uniform, 1 / Math.Sqrt(l.N), i, h);
                    layers.Add(new IdsLayerPlan(i, p, l));
                    break;
                }
                case AttentionLayerSpec l:
                {
                    int mlp = l.MlpRatio * h;
                    Norm(p + "norm", false, i, h);
                    Add(p + "mixer.in_proj.weight", "Default", InitKind.Uniform, linearBound, i, 3 * h, h);
                    Add(p + "mixer.in_proj.bias", "NoDecay", InitKind.Zero, 0, i, 3 * h);
                    Add(p + "mixer.out_proj.weight", "Default", InitKind.Uniform, linearBound, i, h, h);
                    Add(p + "mixer.out_proj.bias", "NoDecay", InitKind.Zero, 0, i, h);
                    Norm(p + "norm2", false, i, h);
                    Add(p + "mlp.fc1.weight", "Default", InitKind.Uniform, linearBound, i, mlp, h);
                    Add(p + "mlp.fc1.bias", "NoDecay", InitKind.Uniform, linearBound, i, mlp);
                    Add(p + "mlp.fc2.weight", "Default", InitKind.Uniform, 1 / Math.Sqrt(mlp), i, h, mlp);
                    Add(p + "mlp.fc2.bias", "NoDecay", InitKind.Uniform, 1 / Math.Sqrt(mlp), i, h);
                    layers.Add(new AttentionLayerPlan(i, p, l, h));
                    break;
                }
            }
        }
        Norm(names.FinalNorm, finalRms, -1, h);
        Add(names.Decoder + ".weight", "Default", InitKind.Uniform, linearBound, -1, s.Output, h);
        if (names.DecoderBias) Add(names.Decoder + ".bias", "NoDecay", InitKind.Uniform, linearBound, -1, s.Output);
        return new ModelPlan(s, EquatableArray.From(ps), EquatableArray.From(layers), offset, names, maxWeights);
    }
}
