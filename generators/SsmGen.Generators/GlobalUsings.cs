// The namespaces nearly every file of the generator reads: the pipeline's records, the shells' helpers, the kinds,
// and the tensor tables shared with the runtime.
global using System.Collections.Generic;
global using System.Linq;
global using System.Text;
global using SsmGen.Generators.Emitters;
global using SsmGen.Generators.Layers;
global using SsmGen.Generators.Model;
global using SsmGen.Layers;
