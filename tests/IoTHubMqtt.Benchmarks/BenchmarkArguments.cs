using System.Globalization;

namespace IoTHubMqtt.Benchmarks;

/// <summary>
/// The one argument syntax of every benchmark: <c>--name value</c> pairs after the benchmark's name. Each benchmark
/// reads the options it knows (with its defaults) and then calls <see cref="ThrowIfUnknown"/>, so a misspelt option
/// stops the run instead of being ignored. Common to all: <c>--rounds N</c> and <c>--output file.md</c>.
/// </summary>
internal sealed class BenchmarkArguments
{
    private readonly Dictionary<string, string> values = new(StringComparer.Ordinal);
    private readonly HashSet<string> read = new(StringComparer.Ordinal);

    public BenchmarkArguments(IReadOnlyList<string> args)
    {
        for (var i = 0; i < args.Count; i++)
        {
            var name = args[i];
            if (!name.StartsWith("--", StringComparison.Ordinal) || name.Length < 3)
            {
                throw new ArgumentException($"Expected an option (--name value), found '{name}'.");
            }

            if (i + 1 >= args.Count)
            {
                throw new ArgumentException($"The option {name} needs a value.");
            }

            values[name[2..]] = args[++i];
        }
    }

    public int Int(string name, int defaultValue)
    {
        var text = String(name);
        return text is null ? defaultValue
            : int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value > 0 ? value
            : throw new ArgumentException($"--{name} takes a positive whole number, not '{text}'.");
    }

    /// <summary>A comma-separated list of positive whole numbers (sizes accept the suffixes K and M: 64K = 65536).</summary>
    public IReadOnlyList<int> Ints(string name, IReadOnlyList<int> defaultValue)
    {
        var text = String(name);
        return text is null ? defaultValue : text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(Parse).ToList();

        int Parse(string item)
        {
            var multiplier = 1;
            if (item.EndsWith('K') || item.EndsWith('k'))
            {
                multiplier = 1024;
                item = item[..^1];
            }
            else if (item.EndsWith('M') || item.EndsWith('m'))
            {
                multiplier = 1024 * 1024;
                item = item[..^1];
            }

            return int.TryParse(item, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value > 0
                ? checked(value * multiplier)
                : throw new ArgumentException($"--{name} takes positive whole numbers separated by commas, not '{text}'.");
        }
    }

    public string? String(string name)
    {
        read.Add(name);
        return values.TryGetValue(name, out var value) ? value : null;
    }

    public void ThrowIfUnknown(string benchmark)
    {
        var unknown = values.Keys.Where(k => !read.Contains(k)).ToList();
        if (unknown.Count > 0)
        {
            throw new ArgumentException($"The {benchmark} benchmark has no option {string.Join(", ", unknown.Select(u => "--" + u))}.");
        }
    }
}
