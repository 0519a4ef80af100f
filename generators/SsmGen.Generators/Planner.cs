using System;
using System.Collections.Generic;
using SsmGen.Generators.Model;

namespace SsmGen.Generators;

/// <summary>ModelSpec → ModelPlan: the parameter table with constant offsets, groups and initializations.</summary>
internal static class Planner
{
    public static ModelPlan Plan(ModelSpec s)
    {
        var ps = new List<ParamPlan>();
        int offset = 0;
        void Add(string name, string group, InitKind init, double arg, int layer, params int[] shape)
        {
            int len = 1;
            foreach (int d in shape) len *= d;
            ps.Add(new ParamPlan(name, EquatableArray.From(shape), offset, len, group, init, arg, layer));
            offset += len;
        }
        int h = s.DModel;
        double linearBound = 1 / Math.Sqrt(h);
        if (s.Vocab > 0) Add("encoder.weight", "Default", InitKind.Normal, 1, -1, s.Vocab, h);
        else
        {
            Add("encoder.weight", "Default", InitKind.Uniform, 1 / Math.Sqrt(s.Input), -1, h, s.Input);
            Add("encoder.bias", "NoDecay", InitKind.Uniform, 1 / Math.Sqrt(s.Input), -1, h);
        }
        var layers = new List<S4DLayerPlan>();
        for (int i = 0; i < s.Layers.Count; i++)
        {
            var l = s.Layers[i];
            string p = $"layers.{i}.";
            int m = l.N / 2;
            Add(p + "norm.weight", "NoDecay", InitKind.One, 0, i, h);
            Add(p + "norm.bias", "NoDecay", InitKind.Zero, 0, i, h);
            Add(p + "mixer.log_dt", "Ssm", InitKind.LogDt, 0, i, h);
            Add(p + "mixer.log_A_real", "Ssm", InitKind.S4DA, 0, i, h, m);
            Add(p + "mixer.A_imag", "Ssm", InitKind.S4DAImag, 0, i, h, m);
            if (l.TrainB) Add(p + "mixer.B", "Ssm", InitKind.ComplexOne, 0, i, h, m, 2);
            Add(p + "mixer.C", "Default", InitKind.ComplexNormal, 0, i, h, m, 2);
            Add(p + "mixer.D", "NoDecay", InitKind.Normal, 1, i, h);
            Add(p + "mixer.output_linear.weight", "Default", InitKind.Uniform, linearBound, i, 2 * h, h);
            Add(p + "mixer.output_linear.bias", "NoDecay", InitKind.Uniform, linearBound, i, 2 * h);
            layers.Add(new S4DLayerPlan(i, l));
        }
        Add("norm_f.weight", "NoDecay", InitKind.One, 0, -1, h);
        Add("norm_f.bias", "NoDecay", InitKind.Zero, 0, -1, h);
        Add("decoder.weight", "Default", InitKind.Uniform, linearBound, -1, s.Output, h);
        Add("decoder.bias", "NoDecay", InitKind.Uniform, linearBound, -1, s.Output);
        return new ModelPlan(s, EquatableArray.From(ps), EquatableArray.From(layers), offset);
    }
}
