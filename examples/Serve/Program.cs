// ssm-serve: the deployable face of SsmGen. One native executable (Native AOT) that loads a checkpoint trained by
// an example and serves it: classifies sequential-MNIST digits, or streams characters to next-character
// predictions. The model type is found from the checkpoint's tensor names and shapes among the declarations
// linked in (see Serve.csproj); every model is built with ModelUse.Inference (no gradients, no backward buffers).
//
//   dotnet publish -c Release -r linux-x64 -p:PublishAot=true examples/Serve -o out/serve
//   out/serve/ssm-serve classify runs/smnist/checkpoint.safetensors < digits.txt
//   printf 'Shall I compare thee' | out/serve/ssm-serve stream runs/sonnets/sonnets.safetensors
//   out/serve/ssm-serve http runs/sonnets/sonnets.safetensors --port 8080     (the HTTP API: Http/HttpServer.cs)
using System.Diagnostics;
using System.Globalization;
using SsmGen;
using SsmGen.Checkpoints;
using SsmGen.Examples.Serve;
#if SERVE_HTTP
using SsmGen.Examples.Serve.Http;
#endif

const string Usage = """
    ssm-serve COMMAND CHECKPOINT [options]
      classify CHECKPOINT [--batch N]     digits on stdin, one per line: 784 pixel values (MNIST's are in [0, 1]) in
                                          the model's order, separated by spaces or commas; prints
                                          "<class>\t<logit 0> … <logit 9>" per digit; N digits per Forward (≤ 64);
                                          a line longer than 65,536 characters is refused
      stream CHECKPOINT [--logits]        characters on stdin; after each one, writes the predicted next character
                                          (with --logits: one line per character, "<code>\t<predicted>\t<logits…>")
      generate CHECKPOINT [--prompt TEXT] [--count N]   greedy continuation of the prompt (default 200 characters),
                                          each character written as soon as it is chosen
      --session FILE (stream, generate)   continue the stream saved in FILE (when it exists; one of another model or
                                          other weights is refused) and save it there at the end
      bench CHECKPOINT [--tokens N]       per-token Step latency and tokens/s at batch 1 (character models), or
                                          per-digit latency (classifiers); time to first output; peak memory
      info CHECKPOINT                     the model type the checkpoint fits, and its size
      http CHECKPOINT [--host IP] [--port N]   (not in a build with -p:ServeHttp=false) an HTTP server (JSON; see the README's "HTTP server"): health, info,
                                          classify, generate (server-sent events with "stream": true), sessions
                                          (create, append, generate, state save/restore, delete); concurrent
                                          requests share steps of up to --batch streams (default 16). Loopback and
                                          port 8080 unless told; --port 0 takes a free port. Bounds: --max-sessions
                                          (256), --idle-seconds (600), --request-timeout (60 s), --max-tokens per
                                          request (4096), --max-body bytes (65,536)
      load CHECKPOINT [--url URL] [--clients N] [--count N] [--rounds N]   N concurrent clients (16) each
                                          streaming --count tokens (200) from a server of the same checkpoint, for
                                          --rounds (3); checks every text against this program's own one-stream
                                          continuation, prints latency, throughput and the server's memory; exits 1
                                          on a lost, refused or differing response or memory that grew
      compare CHECKPOINT --text FILE | --digits FILE --labels FILE   the step with each format of matrices
                                          side by side on held-out data: bits/char or accuracy (digits streamed
                                          pixel by pixel), the logits' change against fp32, top-1 changes
    --weights fp32|bf16|int8|int8-dynamic (every command) the step's matrices as fp32 (default), bfloat16, or int8
                                          with a scale per row: 2× or 4× fewer bytes per token; int8-dynamic also
                                          rounds each product's inputs to int8 (byte products, AVX-VNNI where the
                                          CPU has it); the state, the SSM's parameters, biases and norms stay fp32,
                                          and so does classify's Forward
    A CHECKPOINT is a regular file (devices, pipes and directories are refused) no larger than a checkpoint of the
    models linked in can be.
    """;

#if SERVE_HTTP
string[] commands = ["classify", "stream", "generate", "bench", "info", "compare", "http", "load"];
#else
string[] commands = ["classify", "stream", "generate", "bench", "info", "compare"];
#endif
if (args.Any(a => a is "-h" or "--help"))
{
    Console.WriteLine(Usage);
    return 0;
}
try
{
    if (args.Length < 2) throw new ArgumentException("A command and a checkpoint are needed.");
    if (!commands.Contains(args[0])) throw new ArgumentException($"Unknown command '{args[0]}': the commands are {string.Join(", ", commands)}.");
    // Options are checked before the checkpoint is read.
    var options = CommandOptions.Parse(args[2..]);
    var loaded = ServedModel.Load(args[1], options.Batch, options.Weights);
    if (loaded.Note is not null) Console.Error.WriteLine($"ssm-serve: {loaded.Note}");
    return args[0] switch
    {
        "classify" => Commands.Classify(loaded, options, Console.In, Console.Out),
        "stream" => Commands.Stream(loaded, options, Console.In, Console.Out),
        "generate" => Commands.Generate(loaded, options, Console.Out),
        "bench" => Commands.Bench(loaded, options, Console.Out),
        "compare" => Compare.Run(loaded, options, Console.Out),
#if SERVE_HTTP
        "http" => HttpCommands.Serve(loaded, options, Console.Out),
        "load" => HttpCommands.Load(loaded, options, Console.Out),
#endif
        _ => Commands.Info(loaded, Console.Out),
    };
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"ssm-serve: {e.Message}");
    Console.Error.WriteLine(Usage);
    return 2;
}
catch (Exception e) when (e is InvalidDataException or IOException or FormatException or InvalidOperationException or UnauthorizedAccessException)
{
    Console.Error.WriteLine($"ssm-serve: {e.Message}");
    return 1;
}
